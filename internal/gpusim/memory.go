package gpusim

import "math"

// The constants of the memory model (see the package documentation).
const (
	batchSize  = 512      // Ollama's default num_batch
	kvPad      = 256      // the KV cache is allocated in multiples of this many cells
	graphAlign = 64 * mib // compute buffers are allocated in these steps
)

// footprint is what one model needs at one context and parallel count.
type footprint struct {
	layers     int
	layerBytes int64 // weights of one repeating layer
	layerKV    int64 // KV cache of one repeating layer
	output     int64
	graph      int64
}

func newFootprint(m Model, numCtx, parallel int) footprint {
	tokens := roundUp(int64(numCtx)*int64(max(parallel, 1)), kvPad)
	bpe := m.KVBytesPerElement
	if bpe <= 0 {
		bpe = 2
	}
	perToken := 2 * float64(m.HeadCountKV) * float64(m.HeadDim()) * bpe
	batch := int64(min(batchSize, max(numCtx, 1)))
	graph := 4 * batch * (4*int64(m.EmbeddingLength) + 2*int64(m.HeadCount)*tokens)
	return footprint{
		layers:     m.Layers,
		layerBytes: m.LayerBytes,
		layerKV:    int64(math.Ceil(perToken * float64(tokens))),
		output:     m.OutputBytes,
		graph:      roundUp(graph, graphAlign),
	}
}

// size returns the total: all layers with their KV cache, the output
// weights and the graph.
func (f footprint) size() int64 {
	return int64(f.layers)*(f.layerBytes+f.layerKV) + f.output + f.graph
}

// placement is where a footprint lands on a GPU.
type placement struct {
	size, vram int64
	gpuLayers  int   // repeating layers on the GPU
	gpuWeights int64 // weight bytes on the GPU (for the speed model)
	weights    int64 // all weight bytes
}

// place puts f on a GPU with free bytes, as Ollama does: all of it when it
// fits, else the graph and as many whole layers as fit beside it, else
// nothing. free <= 0 is a CPU-only host or a full GPU.
func (f footprint) place(free int64) placement {
	p := placement{size: f.size(), weights: int64(f.layers)*f.layerBytes + f.output}
	if free <= 0 {
		return p
	}
	if p.size <= free {
		p.vram, p.gpuLayers, p.gpuWeights = p.size, f.layers, p.weights
		return p
	}
	per := f.layerBytes + f.layerKV
	if per <= 0 || free < f.graph+per {
		return p
	}
	k := min(int64(f.layers), (free-f.graph)/per)
	p.gpuLayers = int(k)
	p.vram = f.graph + k*per
	p.gpuWeights = k * f.layerBytes
	return p
}

func roundUp(n, step int64) int64 {
	if n <= 0 {
		return 0
	}
	return (n + step - 1) / step * step
}
