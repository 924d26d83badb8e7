package unified

import (
	"bytes"
	"fmt"
	"text/template"
)

// PlistLabel and PlistPath name the LaunchDaemon that sets the limit at
// every boot: iogpu.wired_limit_mb resets to 0 when the Mac restarts.
const (
	PlistLabel = "dev.ctxfit.iogpu-wired-limit"
	PlistPath  = "/Library/LaunchDaemons/" + PlistLabel + ".plist"
)

var plistTmpl = template.Must(template.New("plist").Parse(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{{.Label}}</string>
	<key>ProgramArguments</key>
	<array>
		<string>/usr/sbin/sysctl</string>
		<string>iogpu.wired_limit_mb={{.MB}}</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
</dict>
</plist>
`))

// Plist returns the LaunchDaemon that runs `sysctl iogpu.wired_limit_mb=mb`
// as root at boot.
func Plist(mb int) []byte {
	var b bytes.Buffer
	if err := plistTmpl.Execute(&b, struct {
		Label string
		MB    int
	}{PlistLabel, mb}); err != nil {
		panic(fmt.Sprintf("unified: plist template: %v", err)) // a constant template with two plain fields
	}
	return b.Bytes()
}

// PersistCommands returns the commands that install the LaunchDaemon from a
// file at tmp (written by the caller as the user) and load it; each runs
// under sudo.
func PersistCommands(tmp string) [][]string {
	return [][]string{
		{"install", "-m", "0644", "-o", "root", "-g", "wheel", tmp, PlistPath},
		{"launchctl", "bootstrap", "system", PlistPath},
	}
}

// UnpersistCommands returns the commands that unload and remove the
// LaunchDaemon; each runs under sudo.
func UnpersistCommands() [][]string {
	return [][]string{
		{"launchctl", "bootout", "system/" + PlistLabel},
		{"rm", "-f", PlistPath},
	}
}
