package tune

import (
	"fmt"
	"testing"

	"github.com/ctxfit/ctxfit/internal/gpusim"
	"github.com/ctxfit/ctxfit/unified"
)

// TestTuneUnderWiredLimits tunes every model on the simulated Macs at
// several iogpu.wired_limit_mb values — the default, below it, 75% of RAM
// and the largest ctxfit suggests — and checks each answer against the
// exhaustive search under that budget.
func TestTuneUnderWiredLimits(t *testing.T) {
	loads, n, worst := 0, 0, 0
	for _, name := range []string{"mac16", "mac32"} {
		g, _ := gpusim.LookupGPU(name)
		limits := []int{0, int(unified.DefaultBudget(g.RAM)>>20) / 2, int(g.RAM * 3 / 4 >> 20), unified.MaxLimitMB(g.RAM)}
		for _, mb := range limits {
			lg := g.WithWiredLimit(mb)
			lg.Name = fmt.Sprintf("%s@%d", name, mb)
			for _, m := range gpusim.Models() {
				l := runCase(t, matrixCase{lg, m, 1, 1024})
				loads += l
				n++
				worst = max(worst, l)
			}
		}
	}
	t.Logf("%d tunes under wired limits: mean %.2f loads, worst %d", n, float64(loads)/float64(n), worst)
}
