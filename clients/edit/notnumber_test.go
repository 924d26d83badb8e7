package edit

import "testing"

func TestNotNumber(t *testing.T) {
	tests := []struct {
		name, json, yaml, toml string // the value of key k in each format; "" leaves k out
		want                   string
	}{
		{name: "absent", want: ""},
		{name: "a number", json: "8192", yaml: "8192", toml: "8192", want: ""},
		{name: "null", json: "null", yaml: "null", want: ""},
		{name: "a word", json: `"notanumber"`, yaml: "notanumber", toml: `"notanumber"`, want: `the string "notanumber"`},
		{name: "a quoted number", json: `"8192"`, yaml: `"8192"`, toml: `"8192"`, want: `the string "8192"`},
		{name: "a fraction", json: "8192.5", yaml: "8192.5", toml: "8192.5", want: "8192.5"},
		{name: "negative", json: "-1", yaml: "-1", toml: "-1", want: "-1"},
		{name: "a list", json: "[1]", yaml: "[1]", toml: "[1]", want: "a list"},
		{name: "a long string", json: `"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"`, yaml: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", toml: `"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"`,
			want: `the string "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jsrc, ysrc, tsrc := `{"o": {"x": 1}}`, "o:\n  x: 1\n", "[o]\nx = 1\n"
			if tt.json != "" {
				jsrc = `{"o": {"x": 1, "k": ` + tt.json + `}}`
			}
			if tt.yaml != "" {
				ysrc = "o:\n  x: 1\n  k: " + tt.yaml + "\n"
			}
			if tt.toml != "" {
				tsrc = "[o]\nx = 1\nk = " + tt.toml + "\n"
			}
			jd, err := ParseJSON([]byte(jsrc))
			if err != nil {
				t.Fatal(err)
			}
			if got := NotNumberJSON(jd.Root(), "o", "k"); got != tt.want {
				t.Errorf("JSON %s: %q, want %q", tt.json, got, tt.want)
			}
			yd, err := ParseYAML([]byte(ysrc))
			if err != nil {
				t.Fatal(err)
			}
			if got := NotNumberYAML(Mapping(yd.Root()), "o", "k"); got != tt.want {
				t.Errorf("YAML %s: %q, want %q", tt.yaml, got, tt.want)
			}
			if tt.name == "null" {
				return // TOML has no null
			}
			td, err := ParseTOML([]byte(tsrc))
			if err != nil {
				t.Fatal(err)
			}
			if got := td.NotNumber("o", "k"); got != tt.want {
				t.Errorf("TOML %s: %q, want %q", tt.toml, got, tt.want)
			}
		})
	}
}
