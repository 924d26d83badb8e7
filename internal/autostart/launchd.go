package autostart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// launchAgent returns the property list of ctxfit's LaunchAgent for o.
//
// RunAtLoad starts ctxfit at login; KeepAlive false lets Quit stay quit
// (launchd would otherwise start it again at once). The tray is an
// Interactive process, which macOS does not throttle like a background job.
// No StandardOutPath: ctxfit keeps its own size-bounded log file.
func launchAgent(o Options) (string, error) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
`)
	fmt.Fprintf(&b, "\t<key>Label</key>\n\t<string>%s</string>\n", xmlText(LaunchdLabel))
	b.WriteString("\t<key>ProgramArguments</key>\n\t<array>\n")
	for _, a := range o.command() {
		fmt.Fprintf(&b, "\t\t<string>%s</string>\n", xmlText(a))
	}
	b.WriteString("\t</array>\n")
	if o.Host != "" {
		b.WriteString("\t<key>EnvironmentVariables</key>\n\t<dict>\n")
		fmt.Fprintf(&b, "\t\t<key>OLLAMA_HOST</key>\n\t\t<string>%s</string>\n", xmlText(o.Host))
		b.WriteString("\t</dict>\n")
	}
	b.WriteString("\t<key>RunAtLoad</key>\n\t<true/>\n")
	b.WriteString("\t<key>KeepAlive</key>\n\t<false/>\n")
	if !o.Headless {
		b.WriteString("\t<key>ProcessType</key>\n\t<string>Interactive</string>\n")
	}
	b.WriteString("</dict>\n</plist>\n")
	if strings.Contains(b.String(), "{{") {
		// kardianos/service reads the property list as a template.
		return "", fmt.Errorf(`the executable path %q holds "{{", which the service file writer cannot store; move ctxfit to a plain path`, o.Executable)
	}
	return b.String(), nil
}

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// parsePlist decodes an XML property list whose top element is a dict.
// Values become string, bool, int64, float64, []any or map[string]any;
// data and date elements are kept as their text.
func parsePlist(data []byte) (map[string]any, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("parse property list: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("parse property list: top element is <%s>, not <plist>", se.Name.Local)
			}
			break
		}
	}
	v, err := plistValue(d)
	if err != nil {
		return nil, fmt.Errorf("parse property list: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("parse property list: the top value is not a dict")
	}
	return m, nil
}

// errEnd is returned by plistValue at the end element of the enclosing
// array, dict or plist.
var errEnd = errors.New("end of container")

// plistValue decodes the next value from d.
func plistValue(d *xml.Decoder) (any, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil, errEnd
		case xml.StartElement:
			switch t.Name.Local {
			case "true", "false":
				if err := d.Skip(); err != nil {
					return nil, err
				}
				return t.Name.Local == "true", nil
			case "string", "data", "date":
				return elementText(d)
			case "integer":
				s, err := elementText(d)
				if err != nil {
					return nil, err
				}
				return strconv.ParseInt(strings.TrimSpace(s), 0, 64)
			case "real":
				s, err := elementText(d)
				if err != nil {
					return nil, err
				}
				return strconv.ParseFloat(strings.TrimSpace(s), 64)
			case "array":
				var a []any
				for {
					v, err := plistValue(d)
					if err == errEnd {
						return a, nil
					}
					if err != nil {
						return nil, err
					}
					a = append(a, v)
				}
			case "dict":
				m := map[string]any{}
				for {
					k, err := plistValue(d)
					if err == errEnd {
						return m, nil
					}
					if err != nil {
						return nil, err
					}
					key, ok := k.(plistKey)
					if !ok {
						return nil, fmt.Errorf("dict holds a %T where a <key> belongs", k)
					}
					v, err := plistValue(d)
					if err == errEnd {
						return nil, fmt.Errorf("dict key %q has no value", key)
					}
					if err != nil {
						return nil, err
					}
					m[string(key)] = v
				}
			case "key":
				s, err := elementText(d)
				return plistKey(s), err
			default:
				return nil, fmt.Errorf("unknown element <%s>", t.Name.Local)
			}
		}
	}
}

// plistKey is a dict key, told apart from a string value.
type plistKey string

// elementText returns the character data up to the end of the current element.
func elementText(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> inside text", t.Name.Local)
		}
	}
}

// agentCommand returns the ProgramArguments of a parsed LaunchAgent.
// agentHost returns the OLLAMA_HOST of a LaunchAgent's
// EnvironmentVariables, or "".
func agentHost(plist map[string]any) string {
	env, _ := plist["EnvironmentVariables"].(map[string]any)
	h, _ := env["OLLAMA_HOST"].(string)
	return h
}

func agentCommand(plist map[string]any) ([]string, error) {
	raw, ok := plist["ProgramArguments"].([]any)
	if !ok || len(raw) == 0 {
		if p, ok := plist["Program"].(string); ok {
			return []string{p}, nil
		}
		return nil, errors.New("the LaunchAgent has no ProgramArguments")
	}
	args := make([]string, len(raw))
	for i, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("ProgramArguments[%d] is a %T, not a string", i, v)
		}
		args[i] = s
	}
	return args, nil
}

var launchctlPIDRE = regexp.MustCompile(`"PID" = ([0-9]+);`)

// launchctlPID returns the process id in the output of `launchctl list
// LABEL`, which it prints while the job runs.
func launchctlPID(out string) (int, bool) {
	m := launchctlPIDRE.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	return pid, err == nil
}

// launchctlDisabled reports whether the output of `launchctl print-disabled
// gui/UID` marks label as disabled: `"label" => disabled` on current macOS,
// `"label" => true` on older ones.
func launchctlDisabled(out, label string) bool {
	prefix := strconv.Quote(label) + " =>"
	for line := range strings.Lines(out) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		return v == "disabled" || v == "true"
	}
	return false
}
