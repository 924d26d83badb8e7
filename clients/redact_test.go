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
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
