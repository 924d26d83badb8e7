package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ctxfit/ctxfit/internal/logfile"
	"github.com/ctxfit/ctxfit/localapi"
	"github.com/ctxfit/ctxfit/state"
)

// settingsJSON is the shape of `ctxfit settings --json`.
type settingsJSON struct {
	AutoFix       bool              `json:"auto_fix"`
	Notifications bool              `json:"notifications"`
	MetricsAddr   string            `json:"metrics_addr"` // "" when off
	GPU           map[string]string `json:"gpu"`          // per server, as `status --set-gpu` set it
	StateDir      string            `json:"state_dir"`
	Daemon        *daemonJSON       `json:"daemon,omitempty"` // absent when none runs for the server
}

type daemonJSON struct {
	PID     int    `json:"pid"`
	Version string `json:"version"`
	Host    string `json:"host"`
	Socket  string `json:"socket"`
}

// runSettings is `ctxfit settings [--json] [--host URL]`: every persisted
// setting, and whether a daemon for the server runs with them.
func runSettings(ctx context.Context, e *env, args []string) error {
	fs := e.flags("settings")
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return e.jsonOrUsage(*asJSON, "settings", fmt.Errorf("unexpected %q; it takes only flags", fs.Arg(0)))
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	store, data, err := e.state()
	if err != nil {
		return e.jsonOrErr(*asJSON, err)
	}
	out := settingsJSON{AutoFix: data.Settings.AutoFix, Notifications: !data.Settings.NotificationsOff,
		MetricsAddr: data.Settings.MetricsAddr, GPU: map[string]string{}, StateDir: store.Dir()}
	for h, hs := range data.Hosts {
		if hs.GPU != "" {
			out.GPU[h] = string(hs.GPU)
		}
	}
	if c, h := e.daemon(ctx, store, u, "settings"); c != nil {
		out.Daemon = &daemonJSON{h.PID, h.Version, h.Host, c.Path()}
		if st, err := c.State(ctx); err == nil {
			out.AutoFix, out.Notifications = st.Settings.AutoFix, !st.Settings.NotificationsOff
		}
	}
	if *asJSON {
		return writeIndentedJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "auto-fix\t%s\tkeep client configs at the tuned context (%s)\n", onOffText(out.AutoFix), e.cmdline(u, "set", "auto-fix", "on|off"))
	fmt.Fprintf(tw, "notifications\t%s\tdesktop notifications from the tray (%s)\n", onOffText(out.Notifications), e.cmdline(u, "set", "notifications", "on|off"))
	metricsAddr := out.MetricsAddr
	if metricsAddr == "" {
		metricsAddr = "off"
	}
	fmt.Fprintf(tw, "metrics\t%s\tPrometheus metrics of %s (%s, read at start)\n", metricsAddr, e.cmdline(nil, "run"), e.cmdline(nil, "run", "--metrics-addr", "HOST:PORT|off"))
	hosts := make([]string, 0, len(out.GPU))
	for h := range out.GPU {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		fmt.Fprintf(tw, "gpu %s\t%s\tyour answer (%s)\n", h, out.GPU[h], e.cmdline(nil, "status", "--host", h, "--set-gpu", "present|absent|auto"))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "\nState: %s\n", store.Dir())
	if out.Daemon != nil {
		fmt.Fprintf(e.stdout, "The running ctxfit (pid %d) for %s uses these settings.\n", out.Daemon.PID, out.Daemon.Host)
	} else {
		fmt.Fprintf(e.stdout, "No ctxfit runs for %s; %s will use these settings.\n", u.Redacted(), e.cmdline(u, "run"))
	}
	return nil
}

func onOffText(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// runSet is `ctxfit set NAME on|off`: it changes a setting in the running
// daemon at once (which persists it), or in the state when none runs.
func runSet(ctx context.Context, e *env, args []string) error {
	fs := e.flags("set")
	host := fs.String("host", "", hostUsage)
	asJSON := fs.Bool("json", false, "print the settings after the change as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("name a setting and on or off: set auto-fix|notifications on|off")
	}
	name := strings.ToLower(pos[0])
	if name == "autofix" || name == "auto_fix" {
		name = "auto-fix"
	}
	if name == "watch-hosts" || name == "watch_hosts" {
		return e.setWatchHosts(*asJSON, pos[1])
	}
	if name != "auto-fix" && name != "notifications" {
		return e.jsonOrUsage(*asJSON, "set", fmt.Errorf("unknown setting %q; ctxfit has auto-fix, notifications and watch-hosts", pos[0]))
	}
	var on bool
	switch strings.ToLower(pos[1]) {
	case "on", "true", "yes", "1":
		on = true
	case "off", "false", "no", "0":
	default:
		return e.jsonOrUsage(*asJSON, "set", fmt.Errorf("%s %q: use on or off", name, pos[1]))
	}
	u, err := e.host(*host)
	if err != nil {
		return err
	}
	store, err := e.store()
	if err != nil {
		return e.jsonOrErr(*asJSON, err)
	}
	var settings state.Settings
	var told string
	c, h := e.daemon(ctx, store, u, "set")
	if c != nil {
		if settings, err = c.Set(ctx, localapi.Setting{Name: name, On: on}); err != nil {
			return e.jsonOrErr(*asJSON, err)
		}
		told = fmt.Sprintf("the running ctxfit (pid %d) applied it at once", h.PID)
	} else {
		err = store.Update(func(d *state.Data) error {
			if name == "auto-fix" {
				d.Settings.AutoFix = on
			} else {
				d.Settings.NotificationsOff = !on
			}
			settings = d.Settings
			return nil
		})
		if err != nil {
			return e.jsonOrErr(*asJSON, err)
		}
		told = fmt.Sprintf("no ctxfit answers for %s; one running there reads it within seconds, and %s starts with it", u.Redacted(), e.cmdline(u, "run"))
	}
	if *asJSON {
		return writeIndentedJSON(e.stdout, map[string]bool{"auto_fix": settings.AutoFix, "notifications": !settings.NotificationsOff})
	}
	fmt.Fprintf(e.stdout, "%s is now %s; %s.\n", name, onOffText(on), told)
	return nil
}

// jsonOrErr returns err, printed as {"error": …} on stdout with --json
// (the exit status is then 1).
func (e *env) jsonOrErr(asJSON bool, err error) error {
	return err // main prints it, as JSON with --json
}

// jsonOrUsage reports a bad command line: as JSON with --json, else on
// stderr; the exit status is 2.
func (e *env) jsonOrUsage(asJSON bool, cmd string, err error) error {
	return usagef("%v", err) // main prints it, as JSON with --json
}

// runLogs is `ctxfit logs [-f] [-n N]`: it prints ctxfit's log, and with -f
// follows it as it grows (across rotations) until interrupted, like
// `docker logs -f`.
func runLogs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("logs")
	follow := fs.Bool("f", false, "follow: keep printing new lines until Ctrl-C")
	fs.BoolVar(follow, "follow", false, "same as -f")
	tail := fs.Int("n", 0, "print only the last `N` lines (0: all)")
	asJSON := fs.Bool("json", false, "print each record as one JSON object per line, whatever --log-format wrote it")
	if err := parse(fs, args); err != nil {
		return err
	}
	out := e.stdout
	if *asJSON {
		lines := &logfile.JSONLines{W: e.stdout}
		defer lines.Flush()
		out = lines
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q; logs takes only flags", fs.Arg(0))
	}
	path, err := logfile.DefaultPath(e.getenv)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !*follow {
		return failf(1, "no log yet at %s; %s writes it.", path, e.cmdline(nil, "run"))
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var off int64
	if f != nil {
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read the log: %w", err)
		}
		off = int64(len(b))
		out.Write(lastLines(b, *tail))
	}
	if !*follow {
		return nil
	}
	return followLog(ctx, out, path, off)
}

// lastLines returns the last n lines of b (all when n <= 0).
func lastLines(b []byte, n int) []byte {
	if n <= 0 {
		return b
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// followLog prints what is appended to path from off on, until ctx ends.
// A file that shrinks or is replaced (rotation) is read again from its
// start.
func followLog(ctx context.Context, w io.Writer, path string, off int64) error {
	var last os.FileInfo
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		fi, err := os.Stat(path)
		if err == nil {
			if fi.Size() < off || (last != nil && !os.SameFile(fi, last)) {
				off = 0 // rotated: a new file
			}
			last = fi
			if fi.Size() > off {
				if f, err := os.Open(path); err == nil {
					f.Seek(off, io.SeekStart)
					n, _ := io.Copy(w, f)
					off += n
					f.Close()
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
