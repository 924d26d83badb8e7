package tray

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/gen2brain/beeep"

	"github.com/ctxfit/ctxfit/assets"
)

// open opens path in the desktop's default application for it.
func open(ctx context.Context, path string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", path)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", path)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", path)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return fmt.Errorf("open %s with %s: %w", path, cmd.Path, err)
	}
	return nil
}

// beeepNotify shows a desktop notification with beeep, which offers no
// buttons: the message names the menu items instead.
func beeepNotify(n Notification) error {
	beeep.AppName = "ctxfit" // beeep keeps the name notifications show in a package variable
	return beeep.Notify(n.Title, n.Message+menuHint(n), assets.PNG(n.Icon))
}
