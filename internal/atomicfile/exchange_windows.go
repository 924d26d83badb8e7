package atomicfile

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

const oNonblock = 0

var procReplaceFileW = windows.NewLazySystemDLL("kernel32.dll").NewProc("ReplaceFileW")

const replacefileIgnoreMergeErrors = 0x2

// exchange puts a in place of b with ReplaceFileW, which keeps b's identity
// and attributes and saves what b held under a backup name, then moves that
// backup to a. Unlike the Unix swaps these are two steps.
func exchange(a, b string) error {
	if err := procReplaceFileW.Find(); err != nil {
		return errNoExchange
	}
	bak := a + ".old"
	pb, err := windows.UTF16PtrFromString(b)
	if err != nil {
		return err
	}
	pa, err := windows.UTF16PtrFromString(a)
	if err != nil {
		return err
	}
	pk, err := windows.UTF16PtrFromString(bak)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		r, _, e := procReplaceFileW.Call(uintptr(unsafe.Pointer(pb)), uintptr(unsafe.Pointer(pa)), uintptr(unsafe.Pointer(pk)), replacefileIgnoreMergeErrors, 0, 0)
		if r != 0 {
			break
		}
		if errors.Is(e, windows.ERROR_FILE_NOT_FOUND) || errors.Is(e, windows.ERROR_PATH_NOT_FOUND) {
			return &os.LinkError{Op: "exchange", Old: a, New: b, Err: os.ErrNotExist}
		}
		if i == 20 || !errors.Is(e, windows.ERROR_SHARING_VIOLATION) && !errors.Is(e, windows.ERROR_ACCESS_DENIED) && !errors.Is(e, windows.ERROR_UNABLE_TO_REMOVE_REPLACED) {
			return &os.LinkError{Op: "exchange", Old: a, New: b, Err: e}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return Rename(bak, a)
}

// quiesce cannot tell on Windows whether others have a file open.
func quiesce(*os.File, time.Duration) (release func(), ok bool) { return func() {}, false }
