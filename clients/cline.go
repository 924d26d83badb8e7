package clients

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"

	"github.com/tailscale/hujson"
)

// Cline 4 (its CLI and the editor extensions built on its SDK) keeps the
// settings of each provider in providers.json:
// providers.ollama.settings = {provider, model, baseUrl, contextWindow,
// maxTokens, ...}. For Ollama it sends contextWindow as num_ctx.
//
// The file is strict JSON, written by JSON.stringify with mode 0600, and it
// holds the API keys and tokens of every provider: Cline discards a file it
// cannot parse, keys included. So ctxfit refuses to edit anything but
// strict JSON, checks that its output is strict JSON, and never shows the
// file's content: the Fixer's backups are private (0600 in a 0700
// directory), and a dry run's diff goes through redactDiff.

func init() { register(clineClient{}) }

var _ Client = clineClient{}

type clineClient struct{}

func (clineClient) Name() string { return "Cline" }

// Files returns providers.json: $CLINE_PROVIDER_SETTINGS_PATH, else
// $CLINE_DATA_DIR/settings/providers.json, else
// $CLINE_DIR/data/settings/providers.json, else
// ~/.cline/data/settings/providers.json.
func (clineClient) Files(env Env) (Files, error) {
	var path string
	switch {
	case env.getenv("CLINE_PROVIDER_SETTINGS_PATH") != "":
		path = env.getenv("CLINE_PROVIDER_SETTINGS_PATH")
	case env.getenv("CLINE_DATA_DIR") != "":
		path = filepath.Join(env.getenv("CLINE_DATA_DIR"), "settings", "providers.json")
	case env.getenv("CLINE_DIR") != "":
		path = filepath.Join(env.getenv("CLINE_DIR"), "data", "settings", "providers.json")
	default:
		var err error
		if path, err = env.joinHome(".cline", "data", "settings", "providers.json"); err != nil {
			return Files{}, err
		}
	}
	f := Files{Watch: []string{path}}
	if exists(path) {
		f.Config = path
	}
	return f, nil
}

// clineWhere is where the Ollama settings live, for reports.
const clineWhere = "providers.ollama.settings"

// clineSettings is what ctxfit reads of providers.json.
type clineSettings struct {
	jd        *edit.JSON
	settings  *hujson.Value // providers.ollama.settings for the host; nil when absent or for another server
	path      []any         // where settings is in the decoded document
	model     string
	context   int // contextWindow; 0 when unset
	maxTokens int
	notNumber string   // what contextWindow holds when it is not a number (Ask.NotNumber)
	openAI    []string // ids of OpenAI-compatible providers pointed at the host's /v1
}

// parseCline reads providers.json, which must be strict JSON.
func parseCline(path string, src []byte, host *ollamaHost) (*clineSettings, error) {
	if err := strictJSON(src); err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	jd, err := edit.ParseJSON(src)
	if err != nil {
		return nil, &ParseError{Path: path, Err: err}
	}
	root := jd.Root()
	if edit.Object(root) == nil {
		return nil, &ParseError{Path: path, Err: errors.New("the top level is not an object")}
	}
	c := &clineSettings{jd: jd}
	pv := edit.Member(root, "providers")
	providers := edit.Object(pv)
	if providers == nil {
		return c, nil
	}
	for i := range providers.Members {
		m := &providers.Members[i]
		key, _ := m.Name.Value.(hujson.Literal)
		if edit.Member(pv, key.String()) != &m.Value {
			continue // a later member of the same name wins, as in JSON.parse
		}
		s := edit.Member(&m.Value, "settings")
		id := edit.Str(s, "provider")
		switch {
		case id == "ollama" && host.matches("ollama", edit.Str(s, "baseUrl"), edit.Member(s, "baseUrl") != nil):
			c.settings, c.path = s, []any{"providers", key.String(), "settings"}
			c.model = edit.Str(s, "model")
			c.context = edit.Num(s, "contextWindow")
			c.maxTokens = edit.Num(s, "maxTokens")
			c.notNumber = isNot("contextWindow", edit.NotNumberJSON(s, "contextWindow"))
		case id != "ollama" && id != "" && edit.Str(s, "baseUrl") != "" && host.matches("ollama", strings.TrimSuffix(strings.TrimSuffix(edit.Str(s, "baseUrl"), "/"), "/v1"), true):
			c.openAI = append(c.openAI, id)
		}
	}
	return c, nil
}

// strictJSON returns an error, without quoting the content, when src is
// not strict JSON.
func strictJSON(src []byte) error {
	if json.Valid(src) {
		return nil
	}
	var x any
	err := json.Unmarshal(src, &x)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not strict JSON (at byte %d), which Cline would discard", se.Offset)
	}
	return errors.New("not strict JSON, which Cline would discard")
}

// Edit sets contextWindow to the tuned value of the Ollama provider's
// model, and lowers maxTokens as WantMaxTokens says (to half of it where
// it is larger).
func (c clineClient) Edit(in Input, t Target) (Result, error) {
	s, err := parseCline(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return Result{}, err
	}
	res := Result{Out: in.Src}
	for _, id := range s.openAI {
		res.Warnings = append(res.Warnings, fmt.Sprintf("providers.%s talks to Ollama's OpenAI-compatible /v1 API, which cannot send num_ctx; `ctxfit fix ollama MODEL` creates a copy of the model that runs at its tuned context", id))
	}
	if s.settings == nil {
		return res, nil
	}
	n, ok := t.tuned(s.model)
	if !ok {
		return res, nil
	}
	if s.notNumber != "" {
		res.Warnings = append(res.Warnings, notNumberWarning(clineWhere, "", s.model, s.notNumber, n))
		return res, nil
	}
	maxTokens := s.maxTokens
	n = in.keepContext(s.context, n)
	if s.context != n {
		if err := s.jd.Set(s.settings, s.path, n, "contextWindow"); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: left as it is, because %v; set contextWindow %d in Cline's settings", clineWhere, err, n))
			return res, nil
		}
	}
	if m := WantMaxTokens(s.maxTokens, 0, n); m > 0 {
		maxTokens = m
		if err := s.jd.Set(s.settings, s.path, maxTokens, "maxTokens"); err != nil {
			return Result{}, fmt.Errorf("%s: %w", in.Path, err)
		}
	}
	if s.context == n && maxTokens == s.maxTokens {
		return res, nil
	}
	if res.Out, res.spans, err = s.jd.Finish(); err != nil {
		return Result{}, fmt.Errorf("%s: %w", in.Path, err)
	}
	if err := strictJSON(res.Out); err != nil {
		return Result{}, fmt.Errorf("internal error: the fixed %s would be %v; nothing was written", in.Path, err)
	}
	res.Changes = append(res.Changes, Change{Where: clineWhere, Model: s.model,
		OldContext: s.context, NewContext: n, OldMaxTokens: s.maxTokens, NewMaxTokens: maxTokens})
	return res, nil
}

// Asks reports the context the Ollama provider asks for.
func (c clineClient) Asks(in Input, t Target) ([]Ask, error) {
	s, err := parseCline(in.Path, in.Src, newOllamaHost(t))
	if err != nil {
		return nil, err
	}
	if s.settings == nil || s.model == "" {
		return nil, nil
	}
	n, _ := t.tuned(s.model)
	a := Ask{Client: c.Name(), Path: in.Path, Where: clineWhere, Model: s.model, Context: s.context, MaxTokens: s.maxTokens, Tuned: n, NotNumber: s.notNumber}
	a.kept = n > 0 && in.keepContext(s.context, n) != n
	a.WantMaxTokens = WantMaxTokens(s.maxTokens, 0, in.keepContext(s.context, n))
	return []Ask{a}, nil
}

// diffRedacter is a client whose config holds secrets. A dry run shows its
// diff only through redactDiff.
type diffRedacter interface {
	redactDiff(diff string) string
}

var _ diffRedacter = clineClient{}

// clineShown are the keys whose values a redacted diff shows.
var clineShown = map[string]bool{"contextWindow": true, "maxTokens": true}

// clineKeyLine matches a changed line of a JSON object member: its sign,
// indentation and key, then the value.
var clineKeyLine = regexp.MustCompile(`^([-+])(\s*"((?:[^"\\]|\\.)*)"\s*:\s*)(.*?)(,?)\s*$`)

// redactDiff returns a unified diff of providers.json that keeps only the
// file names, the hunk headers and the changed lines, and in those only the
// keys, the values of contextWindow and maxTokens, and the structure
// ({, }, commas): context lines and every other value, where API keys and
// tokens live, are left out. It is for reading, not for applying.
func (clineClient) redactDiff(diff string) string { return redactJSONDiff(diff, clineShown) }

// redactInline returns a one-line JSON object or array with every value
// replaced by … but those of the shown keys.
func redactInline(v string, shown map[string]bool) string {
	var b strings.Builder
	key := ""
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case strings.IndexByte("{}[],: \t", c) >= 0:
			if c == '{' || c == ',' {
				key = ""
			}
			b.WriteByte(c)
			i++
		default:
			j := i + 1
			if c == '"' {
				for j < len(v) && v[j] != '"' {
					if v[j] == '\\' {
						j++
					}
					j++
				}
				j++
			} else {
				for j < len(v) && strings.IndexByte("{}[],: \t", v[j]) < 0 {
					j++
				}
			}
			j = min(j, len(v))
			tok := v[i:j]
			k := j
			for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
				k++
			}
			switch {
			case c == '"' && k < len(v) && v[k] == ':':
				key = strings.Trim(tok, `"`)
				b.WriteString(tok)
			case shown[key]:
				b.WriteString(tok)
			default:
				b.WriteString("…")
			}
			i = j
		}
	}
	return b.String()
}

// redactJSONDiff returns a unified diff of a JSON file that keeps only the
// file names, the hunk headers and the changed lines, and in those only the
// keys, the values of the shown keys, and the structure ({, }, commas).
func redactJSONDiff(diff string, shown map[string]bool) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(diff, "\n") {
		body := strings.TrimRight(line, "\r\n")
		switch {
		case body == "":
		case strings.HasPrefix(body, "--- ") || strings.HasPrefix(body, "+++ ") || strings.HasPrefix(body, "@@"):
			b.WriteString(body + "\n")
		case strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+"):
			if m := clineKeyLine.FindStringSubmatch(body); m != nil {
				value := m[4]
				switch {
				case value == "{" || value == "[":
				case strings.HasPrefix(value, "{") || strings.HasPrefix(value, "["):
					value = redactInline(value, shown) // "limit": {"context": 8192, "output": 1024}
				case !shown[m[3]]:
					value = "…"
				}
				b.WriteString(m[1] + m[2] + value + m[5] + "\n")
				continue
			}
			if t := strings.TrimSpace(body[1:]); t == "}" || t == "}," || t == "]" || t == "]," || t == "{" {
				b.WriteString(body + "\n")
				continue
			}
			if t := strings.TrimLeft(body[1:], " \t"); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
				b.WriteString(body[:len(body)-len(t)] + redactInline(t, shown) + "\n") // a minified file
				continue
			}
			b.WriteString(body[:1] + "  …\n")
		}
	}
	return b.String()
}
