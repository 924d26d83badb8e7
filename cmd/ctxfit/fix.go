package main

import (
	"context"
	"errors"
)

func runFix(ctx context.Context, e *env, args []string) error {
	return errors.New("not built yet")
}

func runUndo(ctx context.Context, e *env, args []string) error {
	return errors.New("not built yet")
}

func runClients(ctx context.Context, e *env, args []string) error {
	return errors.New("not built yet")
}
