package ollama

import "testing"

func TestClassify(t *testing.T) {
	const gb = 1 << 30
	tests := []struct {
		name           string
		size, sizeVRAM int64
		state          State
		processor      string
	}{
		{"all on GPU", 17 * gb, 17 * gb, StateGPU, "100% GPU"},
		{"all on CPU", 17 * gb, 0, StateCPU, "100% CPU"},
		{"the brief's split", 49_000_000_000, 22_540_000_000, StatePartial, "54%/46% CPU/GPU"},
		{"rounds to 0% CPU", 1000, 999, StatePartial, "0%/100% CPU/GPU"},
		{"rounds to 100% CPU", 1000, 1, StatePartial, "100%/0% CPU/GPU"},
		{"half", 1000, 500, StatePartial, "50%/50% CPU/GPU"},
		{"vram above size", 100, 200, StateUnknown, "Unknown"},
		{"zero size, zero vram prints as ollama ps does, but is no spill", 0, 0, StateUnknown, "100% CPU"},
		{"zero size with vram", 0, 10, StateUnknown, "Unknown"},
		{"negative size", -5, 0, StateUnknown, "Unknown"},
		{"negative vram", 100, -1, StateUnknown, "Unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := Classify(tt.size, tt.sizeVRAM)
			if s != tt.state || p != tt.processor {
				t.Errorf("Classify(%d, %d) = %s %q, want %s %q", tt.size, tt.sizeVRAM, s, p, tt.state, tt.processor)
			}
		})
	}
}

func TestSpilled(t *testing.T) {
	tests := []struct {
		s    State
		gpu  GPUPresence
		want bool
	}{
		{StatePartial, GPUPresent, true},
		{StatePartial, GPUUnknown, true},
		{StatePartial, GPUAbsent, true},
		{StateCPU, GPUPresent, true},
		{StateCPU, GPUAbsent, false},
		{StateCPU, GPUUnknown, false},
		{StateGPU, GPUPresent, false},
		{StateUnknown, GPUPresent, false},
	}
	for _, tt := range tests {
		if got := Spilled(tt.s, tt.gpu); got != tt.want {
			t.Errorf("Spilled(%s, %s) = %v, want %v", tt.s, tt.gpu, got, tt.want)
		}
	}
}

func TestModelKey(t *testing.T) {
	same := [][2]string{
		{"llama3.1", "llama3.1:latest"},
		{"Llama3.1:8B", "llama3.1:8b"},
		{"registry.local:5000/ns/m", "registry.local:5000/ns/m:latest"},
	}
	for _, p := range same {
		if !SameModel(p[0], p[1]) {
			t.Errorf("SameModel(%q, %q) = false", p[0], p[1])
		}
	}
	if SameModel("llama3.1:8b", "llama3.1:70b") {
		t.Error("different tags compare equal")
	}
	if ModelKey("") != "" {
		t.Error("empty name should stay empty")
	}
}

func TestParseGPUPresence(t *testing.T) {
	for _, s := range []string{"present", "ABSENT", " unknown "} {
		if _, err := ParseGPUPresence(s); err != nil {
			t.Errorf("ParseGPUPresence(%q): %v", s, err)
		}
	}
	if _, err := ParseGPUPresence("yes"); err == nil {
		t.Error("ParseGPUPresence(yes) succeeded")
	}
}
