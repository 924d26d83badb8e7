package edit

import (
	"strings"
	"testing"
)

func TestTOMLSet(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  string
		sets [][]any // value, then the path
		want string
		err  string
	}{
		{
			name: "replace root values, keep comments",
			src:  "# Codex\nmodel = \"llama3.1:8b\" # the model\nmodel_context_window = 8192\n\n[model_providers.x]\nbase_url = \"http://localhost:11434/v1\"\n",
			sets: [][]any{{"llama3.1:8b-ctx24k", "model"}, {24576, "model_context_window"}},
			want: "# Codex\nmodel = \"llama3.1:8b-ctx24k\" # the model\nmodel_context_window = 24576\n\n[model_providers.x]\nbase_url = \"http://localhost:11434/v1\"\n",
		},
		{
			name: "add a root key after the last root line, before the tables",
			src:  "model = 'm'\r\n\r\n[profiles.a]\r\nmodel = 'n'\r\n",
			sets: [][]any{{24576, "model_context_window"}},
			want: "model = 'm'\r\nmodel_context_window = 24576\r\n\r\n[profiles.a]\r\nmodel = 'n'\r\n",
		},
		{
			name: "add a root key to a file of tables only",
			src:  "# top\n\n[a]\nx = 1\n",
			sets: [][]any{{1, "y"}},
			want: "# top\n\ny = 1\n[a]\nx = 1\n",
		},
		{
			name: "add to a table at the end without a final line break",
			src:  "[a]\nx = 1",
			sets: [][]any{{"s\"q", "a", "y"}},
			want: "[a]\nx = 1\ny = \"s\\\"q\"\n",
		},
		{
			name: "multi-line strings are replaced whole, literal strings stay literal",
			src:  "a = '''\nx\n'''\nb = 'lit'\n",
			sets: [][]any{{"new", "a"}, {"é", "b"}},
			want: "a = \"new\"\nb = 'é'\n", // a literal string stays literal
		},
		{
			name: "a value in an inline table is replaced",
			src:  "p = { model = \"m\", n = 1 }\n",
			sets: [][]any{{2, "p", "n"}},
			want: "p = { model = \"m\", n = 2 }\n",
		},
		{
			name: "no key is added to an inline table",
			src:  "p = { model = \"m\" }\n",
			sets: [][]any{{2, "p", "n"}},
			err:  "no [p] table",
		},
		{
			name: "an array value is not a single value",
			src:  "a = [1, 2]\n",
			sets: [][]any{{2, "a"}},
			err:  "not a single value",
		},
		{
			name: "a BOM stays",
			src:  "\xef\xbb\xbfa = 1\n",
			sets: [][]any{{2, "a"}},
			want: "\xef\xbb\xbfa = 2\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseTOML([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.sets {
				var path []string
				for _, p := range s[1:] {
					path = append(path, p.(string))
				}
				if err = d.Set(s[0], path...); err != nil {
					break
				}
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, spans, err := d.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out, tt.want)
			}
			if again, _ := Splice([]byte(tt.src), spans); string(again) != tt.want {
				t.Errorf("the spans do not make the output: %q", again)
			}
		})
	}
}

func TestTOMLRefusesBrokenFiles(t *testing.T) {
	for _, src := range []string{"a = ", "[a\nb = 1", "a = 1\na = 2\n", "a = \"x\nb = 1"} {
		if _, err := ParseTOML([]byte(src)); err == nil {
			t.Errorf("ParseTOML(%q) succeeded", src)
		}
	}
}
