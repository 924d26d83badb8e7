package clients

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ctxfit/ctxfit/clients/edit"
)

// Some clients keep their context where ctxfit cannot write it: Kilo Code
// and Roo Code keep their provider settings in VS Code's secret storage and
// global state, and VS Code's built-in Ollama provider (a "vendor":
// "ollama" group in chatLanguageModels.json) budgets with the model's
// trained context. For them the lever is the derived model: `ctxfit fix
// ollama` creates a copy of the model with the tuned num_ctx, and the user
// selects it in the client.

// Unsettable is a client found on this machine whose context ctxfit cannot
// set in a file.
type Unsettable struct {
	Name  string `json:"client"`
	Where string `json:"path"` // what shows it is installed
	Why   string `json:"why"`  // why ctxfit cannot set its context
}

// unsettableExtensions are the VS Code extensions, by id prefix, whose
// context lives outside any file.
var unsettableExtensions = []struct{ name, id, why string }{
	{"Kilo Code", "kilocode.kilo-code", "keeps its provider settings in VS Code's storage, not in a file"},
	{"Roo Code", "rooveterinaryinc.roo-cline", "keeps its provider settings in VS Code's secret storage, not in a file"},
}

// FindUnsettable returns the clients installed in env whose context ctxfit
// cannot set: Kilo Code and Roo Code (VS Code extensions, also in VS Code
// Server and Cursor), and VS Code's built-in Ollama provider when
// chatLanguageModels.json uses it.
func FindUnsettable(env Env) []Unsettable {
	var out []Unsettable
	if env.Home != "" {
		for _, ext := range unsettableExtensions {
			for _, dir := range []string{".vscode", ".vscode-server", ".vscode-insiders", ".cursor"} {
				m, _ := filepath.Glob(filepath.Join(env.Home, dir, "extensions", ext.id+"-*"))
				if len(m) > 0 {
					sort.Strings(m)
					out = append(out, Unsettable{Name: ext.name, Where: m[len(m)-1], Why: ext.why})
					break
				}
			}
		}
	}
	if f, err := (copilotClient{}).Files(env); err == nil && f.Config != "" {
		if src, err := os.ReadFile(f.Config); err == nil {
			if jd, err := edit.ParseJSON(src); err == nil {
				if groups := edit.Array(jd.Root()); groups != nil {
					for i := range groups.Elements {
						if strings.EqualFold(edit.Str(&groups.Elements[i], "vendor"), "ollama") {
							out = append(out, Unsettable{Name: "VS Code's Ollama provider", Where: f.Config,
								Why: "budgets with each model's trained context, which no setting changes"})
							break
						}
					}
				}
			}
		}
	}
	return out
}
