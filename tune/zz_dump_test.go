package tune

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

func TestZZDump(t *testing.T) {
	th, _ := strconv.Atoi(os.Getenv("DUMP"))
	if th == 0 {
		t.Skip()
	}
	hist := map[string]map[int]int{}
	for _, start := range famStarts() {
		hist[start.name] = map[int]int{}
		for _, ph := range families() {
			for _, c := range famCases() {
				r, ok := runFamCase(ph, c, start)
				if !ok {
					continue
				}
				hist[start.name][r.loads]++
				if r.loads >= th {
					extra := ""
					if start.name == "after a spill" {
						pr, _ := clientSpill(ph, c)
						extra = fmt.Sprintf("[before %s] ", probeTrace([]Probe{pr}))
					}
					if start.name == "known host" {
						lo, up, _ := hostBound(ph, c)
						extra = fmt.Sprintf("[host %.2f-%.2fG] ", lo/1e9, up/1e9)
					}
					fmt.Printf("%s | %s | %s (want %d): %s%s\n", start.name, ph.name, c, r.want, extra, probeTrace(r.probes))
				}
			}
		}
	}
	fmt.Println(hist)
}
