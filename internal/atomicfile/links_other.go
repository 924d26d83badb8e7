//go:build !unix

package atomicfile

import "io/fs"

// Links returns how many names (hard links) the file has; 1 when unknown,
// which is always here.
func Links(fs.FileInfo) int { return 1 }
