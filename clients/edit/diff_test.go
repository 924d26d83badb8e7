package edit

import (
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	lines := func(from, to int) string { // "l<from>\n" … "l<to>\n"
		var b strings.Builder
		for i := from; i <= to; i++ {
			b.WriteString("l" + itoa(i) + "\n")
		}
		return b.String()
	}
	for _, tt := range []struct {
		name string
		a, b string
		want string
	}{
		{"equal", "x\n", "x\n", ""},
		{"one change in the middle",
			lines(1, 10), lines(1, 4) + "L5\n" + lines(6, 10),
			"@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+L5\n l6\n l7\n l8\n"},
		{"two changes far apart make two hunks",
			lines(1, 20), "L1\n" + lines(2, 19) + "L20\n",
			"@@ -1,4 +1,4 @@\n-l1\n+L1\n l2\n l3\n l4\n@@ -17,4 +17,4 @@\n l17\n l18\n l19\n-l20\n+L20\n"},
		{"changes close together share a hunk",
			lines(1, 9), "L1\n" + lines(2, 7) + "L8\n" + "l9\n",
			"@@ -1,9 +1,9 @@\n-l1\n+L1\n l2\n l3\n l4\n l5\n l6\n l7\n-l8\n+L8\n l9\n"},
		{"insertion",
			"a\nb\n", "a\nnew\nb\n",
			"@@ -1,2 +1,3 @@\n a\n+new\n b\n"},
		{"insertion into an empty file",
			"", "a\n",
			"@@ -0,0 +1 @@\n+a\n"},
		{"no newline at the end",
			"a\nb", "a\nc",
			"@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"CRLF stays in the lines",
			"a\r\nb\r\n", "a\r\nc\r\n",
			"@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff("a", "b", []byte(tt.a), []byte(tt.b))
			want := tt.want
			if want != "" {
				want = "--- a\n+++ b\n" + want
			}
			if got != want {
				t.Errorf("diff:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
