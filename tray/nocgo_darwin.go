//go:build darwin && !cgo

package tray

import (
	"context"
	"fmt"
)

// Run returns ErrNoTray: on macOS the tray needs cgo, and this ctxfit was
// built without it.
func Run(ctx context.Context, b Backend, opts Options) error {
	return fmt.Errorf("%w: this ctxfit was built without cgo, which the macOS menu bar needs; rebuild with CGO_ENABLED=1", ErrNoTray)
}
