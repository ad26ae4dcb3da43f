// Command tessera-bench measures transparency-dev/tessera's POSIX log on this machine, as the
// baseline of the ledger bench (bench/ledger/ledger-bench.ts builds and runs it in the same run, so
// the ledger's rate is compared with Tessera's as a ratio measured side by side).
//
// It appends random leaves (702 bytes by default) from many concurrent writers, each with one Add
// outstanding at a time (a closed loop, like writers waiting for their HTTP answer, without the
// HTTP), to a POSIX log in a fresh folder on the same filesystem as the ledger bench's stores. The
// POSIX driver's future resolves once the batch is written with O_SYNC, its directories fsynced and
// the batch integrated into the tree (tiles and tree state written the same way). Batching is
// Tessera's default (a batch is sent to the sequencer at 256 entries or 250 ms); checkpoints are
// published every second (the default is 10 s; a shorter one only shortens the final wait for the
// checkpoint that covers every entry).
//
// After a warm-up, it counts the futures resolved during a fixed interval and their Add -> index
// latency. Then it stops the writers, shuts the appender down (every resolved entry covered by a
// published checkpoint) and checks, before it reports anything: the checkpoint verifies with the
// log's key, its size is the integrated size, and the integrated tree holds exactly the entries
// whose futures resolved, each once.
//
// Output (stdout): one JSON object, see result. Failures exit 1 with the reason on stderr.
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

const checkpointInterval = time.Second

type result struct {
	Tessera        string  `json:"tessera"`
	Front          string  `json:"front"`
	Go             string  `json:"go"`
	Writers        int     `json:"writers"`
	LeafBytes      int     `json:"leafBytes"`
	WarmupSeconds  float64 `json:"warmupSeconds"`
	Seconds        float64 `json:"seconds"`
	Entries        int     `json:"entries"`
	EntriesPerSec  int     `json:"entriesPerSec"`
	LatencyP50Ms   float64 `json:"latencyP50Ms"`
	LatencyP99Ms   float64 `json:"latencyP99Ms"`
	Pushbacks      int64   `json:"pushbacks"`
	IntegratedSize uint64  `json:"integratedSize"`
	CheckpointSize uint64  `json:"checkpointSize"`
	// CPU of this process over the measured interval (user + system), per entry.
	CPUSeconds    float64 `json:"cpuSeconds"`
	CPUMsPerEntry float64 `json:"cpuMsPerEntry"`
	BatchMaxSize  uint    `json:"batchMaxSize"`
	BatchMaxAgeMs int64   `json:"batchMaxAgeMs"`
	CheckpointMs  int64   `json:"checkpointIntervalMs"`
}

func main() {
	writers := flag.Int("writers", 512, "concurrent writers, each with one Add outstanding")
	leafBytes := flag.Int("leaf-bytes", 702, "size of each random leaf")
	warmup := flag.Duration("warmup", 5*time.Second, "time appended before the measured interval")
	measure := flag.Duration("duration", 60*time.Second, "measured interval")
	front := flag.String("front", "none", "none: writers call Add in this process; http: writers POST each leaf to an HTTP front on loopback that calls Add and answers with the index")
	dir := flag.String("dir", "", "folder for the log (default: a fresh one under $TMPDIR, removed afterwards)")
	flag.Parse()
	if err := run(*front, *writers, *leafBytes, *warmup, *measure, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "tessera-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(front string, writers, leafBytes int, warmup, measure time.Duration, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "clinical-ledger-tessera-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	skey, vkey, err := note.GenerateKey(crand.Reader, "bench.clinical-ledger.example/tessera")
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		return err
	}
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).WithCheckpointInterval(checkpointInterval)
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
	if err != nil {
		return err
	}

	add := func(ctx context.Context, leaf []byte) (uint64, error) {
		idx, err := appender.Add(ctx, tessera.NewEntry(leaf))()
		return idx.Index, err
	}
	if front == "http" {
		stop, err := serveHTTP(appender, writers, &add)
		if err != nil {
			return err
		}
		defer stop()
	} else if front != "none" {
		return fmt.Errorf("unknown front %q", front)
	}

	// phase: 0 warm-up, 1 measured, 2 stopping.
	var phase atomic.Int32
	var pushbacks atomic.Int64
	indices := make([][]uint64, writers)    // every resolved index, to check the tree afterwards
	latencies := make([][]float64, writers) // ms, measured interval only
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seed [32]byte
			_, _ = crand.Read(seed[:])
			rng := rand.NewChaCha8(seed)
			for phase.Load() < 2 {
				leaf := make([]byte, leafBytes)
				_, _ = rng.Read(leaf)
				t0 := time.Now()
				idx, err := add(ctx, leaf)
				if errors.Is(err, tessera.ErrPushback) {
					pushbacks.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				indices[w] = append(indices[w], idx)
				if phase.Load() == 1 {
					latencies[w] = append(latencies[w], float64(time.Since(t0).Microseconds())/1000)
				}
			}
		}()
	}

	// On a failure the other writers are left as they are: with the context cancelled, a future
	// whose batch was never flushed would not resolve, and the process exits anyway.
	select {
	case err := <-errs:
		return err
	case <-time.After(warmup):
	}
	cpu0 := cpuSeconds()
	started := time.Now()
	phase.Store(1)
	select {
	case err := <-errs:
		return err
	case <-time.After(measure):
	}
	phase.Store(2)
	seconds := time.Since(started).Seconds()
	cpu := cpuSeconds() - cpu0
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}

	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	defer scancel()
	if err := shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	integrated, err := reader.IntegratedSize(ctx)
	if err != nil {
		return err
	}
	cpSize, err := checkpointSize(ctx, reader, verifier)
	if err != nil {
		return err
	}
	if cpSize != integrated {
		return fmt.Errorf("checkpoint size %d, integrated size %d", cpSize, integrated)
	}
	if err := eachOnce(indices, integrated); err != nil {
		return err
	}

	lat := slices.Concat(latencies...)
	slices.Sort(lat)
	out := result{
		Tessera:        moduleVersion("github.com/transparency-dev/tessera"),
		Go:             runtime.Version(),
		Front:          front,
		Writers:        writers,
		LeafBytes:      leafBytes,
		WarmupSeconds:  warmup.Seconds(),
		Seconds:        round(seconds, 2),
		Entries:        len(lat),
		EntriesPerSec:  int(float64(len(lat))/seconds + 0.5),
		LatencyP50Ms:   round(percentile(lat, 0.5), 1),
		LatencyP99Ms:   round(percentile(lat, 0.99), 1),
		Pushbacks:      pushbacks.Load(),
		IntegratedSize: integrated,
		CheckpointSize: cpSize,
		CPUSeconds:     round(cpu, 2),
		CPUMsPerEntry:  round(cpu*1000/max(1, float64(len(lat))), 3),
		BatchMaxSize:   opts.BatchMaxSize(),
		BatchMaxAgeMs:  opts.BatchMaxAge().Milliseconds(),
		CheckpointMs:   opts.CheckpointInterval().Milliseconds(),
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// serveHTTP starts an HTTP front on loopback (POST /add: the body is the leaf, the answer its
// index once Add's future resolved; 503 on pushback) and replaces *add with a client of it, one
// keep-alive connection per writer.
func serveHTTP(appender *tessera.Appender, writers int, add *func(context.Context, []byte) (uint64, error)) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		leaf, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		idx, err := appender.Add(r.Context(), tessera.NewEntry(leaf))()
		switch {
		case errors.Is(err, tessera.ErrPushback):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			_, _ = w.Write(strconv.AppendUint(nil, idx.Index, 10))
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/add"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}, Timeout: time.Minute}
	*add = func(ctx context.Context, leaf []byte) (uint64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(leaf))
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return strconv.ParseUint(string(body), 10, 64)
		case http.StatusServiceUnavailable:
			return 0, fmt.Errorf("%s: %w", body, tessera.ErrPushback)
		default:
			return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
		}
	}
	return func() { _ = srv.Close() }, nil
}

// checkpointSize opens the published checkpoint with the log's key and returns its tree size.
func checkpointSize(ctx context.Context, r tessera.LogReader, v note.Verifier) (uint64, error) {
	raw, err := r.ReadCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		return 0, fmt.Errorf("checkpoint does not verify: %w", err)
	}
	// C2SP tlog-checkpoint body: origin, tree size, root hash.
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 3 || lines[0] != v.Name() {
		return 0, fmt.Errorf("malformed checkpoint %q", n.Text)
	}
	return strconv.ParseUint(lines[1], 10, 64)
}

// eachOnce checks that the resolved indices are exactly 0..size-1: nothing acknowledged is missing
// from the tree, nothing is in it twice, and it holds nothing else.
func eachOnce(indices [][]uint64, size uint64) error {
	seen := make([]bool, size)
	var n uint64
	for _, xs := range indices {
		for _, i := range xs {
			if i >= size {
				return fmt.Errorf("index %d resolved but the tree has %d entries", i, size)
			}
			if seen[i] {
				return fmt.Errorf("index %d resolved twice", i)
			}
			seen[i] = true
			n++
		}
	}
	if n != size {
		return fmt.Errorf("%d indices resolved, tree has %d entries", n, size)
	}
	return nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func round(x float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return f
}

func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}
