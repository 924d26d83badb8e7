package termtext

import "testing"

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"llama3.1:8b-instruct-fp16", "llama3.1:8b-instruct-fp16"},
		{"qwen2.5 中文 café", "qwen2.5 中文 café"},
		{"evil\x1b[2J\x1b]0;title\x07", `evil\x1b[2J\x1b]0;title\x07`},
		{"a\nb\rc\td", `a\nb\rc\td`},
		{"abc\u202edcba", `abc\u202edcba`},
		{"x\u2066y\u2069\u200b\u200f\ufeff", `x\u2066y\u2069\u200b\u200f\ufeff`},
		{"c1\u009bcontrol", `c1\u009bcontrol`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"del\x7f", `del\x7f`},
		{"sep\u2028", `sep\u2028`},
	}
	for _, tt := range tests {
		if got := Clean(tt.in); got != tt.want {
			t.Errorf("Clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
