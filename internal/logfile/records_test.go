package logfile

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestJSONRecord(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{
			name: "text record",
			line: `time=2026-12-02T05:46:28.174Z level=INFO msg="llama3.1:8b loaded: 24 GB, 100% GPU" event=loaded context=33792` + "\n",
			want: `{"time":"2026-12-02T05:46:28.174Z","level":"INFO","msg":"llama3.1:8b loaded: 24 GB, 100% GPU","event":"loaded","context":"33792"}`,
		},
		{
			name: "quotes, escapes and an empty value",
			line: `level=WARN msg="say \"hi\"\n\tthere" "odd key"=x empty="" bare=`,
			want: `{"level":"WARN","msg":"say \"hi\"\n\tthere","odd key":"x","empty":"","bare":""}`,
		},
		{
			name: "json record, compacted",
			line: `{"time": "2026-12-02T05:46:28Z", "level": "INFO", "msg": "ok", "context": 33792}`,
			want: `{"time":"2026-12-02T05:46:28Z","level":"INFO","msg":"ok","context":33792}`,
		},
		{name: "not a record", line: "panic: something broke", want: `{"msg":"panic: something broke"}`},
		{name: "a broken quote", line: `msg="never closed`, want: `{"msg":"msg=\"never closed"}`},
		{name: "broken json", line: `{"msg": `, want: `{"msg":"{\"msg\": "}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(JSONRecord([]byte(tt.line)))
			if got != tt.want {
				t.Errorf("JSONRecord(%q)\n got %s\nwant %s", tt.line, got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}

// Every record slog's text handler writes comes back with its values.
func TestJSONRecordReadsSlogText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	msg := "Continue asks m for 131072 tokens; `ctxfit fix continue --host http://x:1` writes it = done"
	log.Warn(msg, "client", "Continue", "path", `C:\Users\a b\config.yaml`, "n", 3, "d", 1500*time.Millisecond)
	var rec map[string]any
	if err := json.Unmarshal(JSONRecord(buf.Bytes()), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	want := map[string]string{"level": "WARN", "msg": msg, "client": "Continue", "path": `C:\Users\a b\config.yaml`, "n": "3", "d": "1.5s"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %q, want %q (line %s)", k, rec[k], v, buf.Bytes())
		}
	}
}

// JSONLines converts whole lines only, however the writes split them.
func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	j := &JSONLines{W: &out}
	for _, part := range []string{"level=INFO msg=o", "ne\n\nlevel=INFO ", "msg=two\nlevel=INFO msg=three"} {
		j.Write([]byte(part))
	}
	if got := out.String(); got != `{"level":"INFO","msg":"one"}`+"\n"+`{"level":"INFO","msg":"two"}`+"\n" {
		t.Errorf("before Flush: %q", got)
	}
	j.Flush()
	if !strings.HasSuffix(out.String(), `{"level":"INFO","msg":"three"}`+"\n") {
		t.Errorf("after Flush: %q", out.String())
	}
}
