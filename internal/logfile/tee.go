package logfile

import (
	"errors"
	"io"
)

// Tee returns a writer that writes each record to every w in order, the
// log file first, and reports success when at least one of them took it.
// Unlike io.MultiWriter it never stops at a failing writer: a Windows
// service or a program started from the Run key without a console has no
// valid stderr, and its log file must still get every line. Nil writers
// are skipped.
func Tee(w ...io.Writer) io.Writer {
	t := make(tee, 0, len(w))
	for _, x := range w {
		if x != nil {
			t = append(t, x)
		}
	}
	return t
}

type tee []io.Writer

func (t tee) Write(p []byte) (int, error) {
	var errs []error
	for _, w := range t {
		n, err := w.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(t) > 0 && len(errs) == len(t) {
		return 0, errors.Join(errs...)
	}
	return len(p), nil
}
