package clients

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`  "apiKey": "sk-abc",`, `  "apiKey": "<redacted>",`},
		{`+      "apiKey": "abc" // mine`, `+      "apiKey": "<redacted>" // mine`},
		{`{"title":"x","api_key":"abc","contextLength":1}`, `{"title":"x","api_key":"<redacted>","contextLength":1}`},
		{`    apiKey: abc123  # prod`, `    apiKey: <redacted>  # prod`},
		{`- api_key: 'abc'`, `- api_key: '<redacted>'`},
		{`openai-api-key: abc`, `openai-api-key: <redacted>`},
		{`OPENAI_API_KEY=abc`, `OPENAI_API_KEY=<redacted>`},
		{`  token: abc`, `  token: <redacted>`},
		{`  "accessToken": "abc"`, `  "accessToken": "<redacted>"`},
		{`  "maxTokens": 4096,`, `  "maxTokens": 4096,`},
		{`  max_tokens: 4096`, `  max_tokens: 4096`},
		{`      password: "p\"w"`, `      password: "<redacted>"`},
		{`  "Authorization": "Bearer abcdefghijkl"`, `  "Authorization": "<redacted>"`},
		{`  headers: {Authorization: Basic abcdefghijkl, X: 1}`, `  headers: {Authorization: <redacted>, X: 1}`},
		{`curl -H 'Authorization: Bearer abcdefghijkl'`, `curl -H 'Authorization: Bearer <redacted>'`},
		{`request failed with Bearer abcdefghijkl`, `request failed with Bearer <redacted>`},
		{`model: llama3.1:8b  # key sk-proj-abcdefghijklmnop`, `model: llama3.1:8b  # key <redacted>`},
		{`  secret: {`, `  secret: {`},
		{`  apiBase: http://localhost:11434`, `  apiBase: http://localhost:11434`},
		{`  model: llama3.1:8b-instruct-fp16`, `  model: llama3.1:8b-instruct-fp16`},
		{"  \"apiKey\": \"abc\"\r\n", "  \"apiKey\": \"<redacted>\"\r\n"},
		{`  "apiBase": "https://me:pw-1234@proxy.example/v1",`, `  "apiBase": "https://me:<redacted>@proxy.example/v1",`},
		{`    apiBase: http://:pw@10.0.0.2:11434 # a, b`, `    apiBase: http://:<redacted>@10.0.0.2:11434 # a, b`},
		{`  api_base: http://10.0.0.2:11434/x@y`, `  api_base: http://10.0.0.2:11434/x@y`},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactFollowingLines: a secret whose value starts on a later line.
func TestRedactFollowingLines(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"YAML literal block", "models:\n  - name: x\n    apiKey: |\n      sk-line-one\n      line-two\n\n      line-three\n    model: llama3\n",
			"models:\n  - name: x\n    apiKey: |\n      <redacted>\n      <redacted>\n\n      <redacted>\n    model: llama3\n"},
		{"YAML folded block with chomping and a comment", "apiKey: >- # prod\n  abc\n  def\nmodel: m\n",
			"apiKey: >- # prod\n  <redacted>\n  <redacted>\nmodel: m\n"},
		{"a list item's key", "- apiKey: |\n    abc\n  model: m\n", "- apiKey: |\n    <redacted>\n  model: m\n"},
		{"YAML plain scalar on the next lines", "env:\n  OPENAI_API_KEY:\n    abc\n    def\n  OTHER: 1\n",
			"env:\n  OPENAI_API_KEY:\n    <redacted>\n    <redacted>\n  OTHER: 1\n"},
		{"YAML key with a nested map", "auth:\n  user: me\n  password: pw\n", "auth:\n  user: me\n  password: <redacted>\n"},
		{"JSON value after a line break", "{\n  \"apiKey\":\n    \"abc\",\n  \"model\": \"m\"\n}\n",
			"{\n  \"apiKey\":\n    \"<redacted>\",\n  \"model\": \"m\"\n}\n"},
		{"JSON object value", "{\"secret\":\n  {\"a\": 1, \"token\": \"t\"}\n}", "{\"secret\":\n  {\"a\": 1, \"token\": \"<redacted>\"}\n}"},
		{"a diff", "   models:\n-    apiKey: |\n-      old\n+    apiKey: |\n+      new\n     model: m\n",
			"   models:\n-    apiKey: |\n-      <redacted>\n+    apiKey: |\n+      <redacted>\n     model: m\n"},
		{"CRLF", "apiKey: |\r\n  abc\r\nmodel: m\r\n", "apiKey: |\r\n  <redacted>\r\nmodel: m\r\n"},
		{"not a secret", "description: |\n  my key is here\n", "description: |\n  my key is here\n"},
		{"YAML flow list", "apiKeys: [abc, 'def'] # two\nmodel: m\n", "apiKeys: [<redacted>, '<redacted>'] # two\nmodel: m\n"},
		{"JSON list on one line", "{\"apiKeys\": [\"abc\", \"def\"], \"model\": \"m\"}\n", "{\"apiKeys\": [\"<redacted>\", \"<redacted>\"], \"model\": \"m\"}\n"},
		{"JSON list over lines", "{\n  \"apiKeys\": [\n    \"abc\",\n    \"def\"\n  ],\n  \"model\": \"m\"\n}\n",
			"{\n  \"apiKeys\": [\n    \"<redacted>\",\n    \"<redacted>\"\n  ],\n  \"model\": \"m\"\n}\n"},
		{"JSON list ending on a line with more", "\"apiKeys\": [\"abc\",\n  \"def\"], \"secret\": \"ghi\", \"model\": \"m\"\n",
			"\"apiKeys\": [\"<redacted>\",\n  \"<redacted>\"], \"secret\": \"<redacted>\", \"model\": \"m\"\n"},
		{"a list of objects", "apiKeys: [{key: abc, note: n}]\n", "apiKeys: [{key: <redacted>, note: n}]\n"},
		{"a diff of a list", "-  \"apiKeys\": [\n-    \"abc\"\n+  \"apiKeys\": [\n+    \"def\"\n   ],\n", "-  \"apiKeys\": [\n-    \"<redacted>\"\n+  \"apiKeys\": [\n+    \"<redacted>\"\n   ],\n"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("%s: Redact(%q)\n = %q\nwant %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestRedactNamedValues: a value whose sibling name names a secret
// (name: OPENAI_API_KEY, value: …), in YAML and JSON, on one line or on
// the next.
func TestRedactNamedValues(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"YAML env list", "env:\n  - name: OPENAI_API_KEY\n    value: sk-abc123\n  - name: MODEL\n    value: llama3\n",
			"env:\n  - name: OPENAI_API_KEY\n    value: <redacted>\n  - name: MODEL\n    value: llama3\n"},
		{"JSON on one line", `[{"name": "Authorization", "value": "xyz"}, {"name": "X-Model", "value": "m"}]`,
			`[{"name": "Authorization", "value": "<redacted>"}, {"name": "X-Model", "value": "m"}]`},
		{"JSON over lines", "{\n  \"name\": \"GITHUB_TOKEN\",\n  \"value\": \"abc\"\n}\n", "{\n  \"name\": \"GITHUB_TOKEN\",\n  \"value\": \"<redacted>\"\n}\n"},
		{"the mapping ended", "- name: API_KEY\n  other: 1\nvalue: kept\n", "- name: API_KEY\n  other: 1\nvalue: kept\n"},
		{"not a secret's name", "- name: model\n  value: llama3\n", "- name: model\n  value: llama3\n"},
		{"header strings in a list", `"headers": ["Authorization: xyz", "X-Api-Key:abc", "Accept: text/plain"],`,
			`"headers": ["Authorization: <redacted>", "X-Api-Key:<redacted>", "Accept: text/plain"],`},
		{"a YAML header string", "  - 'Proxy-Authorization: Basic QWxhZGRpbjpvcGVu'\n", "  - 'Proxy-Authorization: Basic <redacted>'\n"},
		{"a model name with a colon", `"model": "llama3.1:8b"`, `"model": "llama3.1:8b"`},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("%s: Redact(%q)\n = %q\nwant %q", tt.name, tt.in, got, tt.want)
		}
	}
}
