package main

// The C2SP tlog-tiles check: a log's checkpoint, hash tiles and entry bundles, read over HTTP and
// verified with golang.org/x/mod/sumdb/tlog's tile code only (tlog.TileHashReader checks every
// tile it reads against a tree hash; tlog.ReadTileData says what a tile must hold).
//
// Input item: {"url": "<prefix ending in />", "vkey": "...", "origin": "...", "token": "...",
// "sizes": [1, 2, ...]}. The whole log is read once through its entry bundles; the root of every
// listed size is computed here from those entries, then for each size every tile that size adds
// (tlog.NewTiles, partial ones included) is fetched and compared byte for byte, the size's entry
// bundle is compared, and inclusion and consistency proofs are built from the served tiles alone.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type tilesItem struct {
	URL    string  `json:"url"`
	VKey   string  `json:"vkey"`
	Origin string  `json:"origin"`
	Token  string  `json:"token"`
	Sizes  []int64 `json:"sizes"`
}

type tilesResult struct {
	OK      bool     `json:"ok"`
	Errors  []string `json:"errors,omitempty"`
	Size    int64    `json:"size"`
	Root    string   `json:"root,omitempty"`
	Fetched int      `json:"fetched"`
	Checked int      `json:"checked"`
}

// tileHeight is C2SP tlog-tiles' fixed tile height.
const tileHeight = 8

// c2spPath maps sumdb's tile names (tile/8/L/N, tile/8/data/N) to C2SP's (tile/L/N, tile/entries/N).
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", tileHeight))
	if strings.HasPrefix(p, "data/") {
		p = "entries/" + strings.TrimPrefix(p, "data/")
	}
	return "tile/" + p
}

type httpLog struct {
	prefix  string
	token   string
	client  *http.Client
	fetched int
}

func (h *httpLog) get(path string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, h.prefix+path, nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	res, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	h.fetched++
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode, strings.TrimSpace(string(body)))
	}
	if strings.HasPrefix(path, "tile/") {
		if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
			return nil, fmt.Errorf("GET %s: content type %q", path, ct)
		}
		if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			return nil, fmt.Errorf("GET %s: cache control %q is not immutable", path, cc)
		}
	}
	return body, nil
}

// tileReader serves tlog.TileHashReader from the log's HTTP tiles.
type tileReader struct{ log *httpLog }

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.log.get(c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func splitBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("truncated length prefix")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("entry %d: %d bytes announced, %d left", len(out), n, len(b)-2)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

func dataTile(size int64) tlog.Tile {
	n := (size - 1) / (1 << tileHeight)
	return tlog.Tile{H: tileHeight, L: -1, N: n, W: int(size - n<<tileHeight)}
}

func checkTiles(it tilesItem) tilesResult {
	res := tilesResult{}
	fail := func(err error) tilesResult {
		res.Errors = append(res.Errors, err.Error())
		return res
	}
	hl := &httpLog{prefix: it.URL, token: it.Token, client: &http.Client{Timeout: 30 * time.Second}}
	defer func() { res.Fetched = hl.fetched }()

	v, err := note.NewVerifier(it.VKey)
	if err != nil {
		return fail(fmt.Errorf("note.NewVerifier: %w", err))
	}
	raw, err := hl.get("checkpoint")
	if err != nil {
		return fail(err)
	}
	cp, _, _, err := log.ParseCheckpoint(raw, it.Origin, v)
	if err != nil {
		return fail(fmt.Errorf("log.ParseCheckpoint: %w", err))
	}
	size := int64(cp.Size)
	res.Size = size
	res.Root = hex.EncodeToString(cp.Hash)
	if size == 0 {
		return fail(errors.New("checkpoint has size 0"))
	}

	// Every entry, through the entry bundles, hashed here (RFC 6962 leaf hash).
	var records [][]byte
	st := &store{}
	for n := int64(0); n*(1<<tileHeight) < size; n++ {
		end := min(size, (n+1)*(1<<tileHeight))
		t := dataTile(end)
		b, err := hl.get(c2spPath(t))
		if err != nil {
			return fail(err)
		}
		recs, err := splitBundle(b)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", c2spPath(t), err))
		}
		if len(recs) != t.W {
			return fail(fmt.Errorf("%s: %d entries, want %d", c2spPath(t), len(recs), t.W))
		}
		for _, r := range recs {
			add, err := tlog.StoredHashesForRecordHash(st.n, tlog.RecordHash(r), st)
			if err != nil {
				return fail(err)
			}
			st.hashes = append(st.hashes, add...)
			st.n++
			records = append(records, r)
		}
	}
	root, err := tlog.TreeHash(size, st)
	if err != nil {
		return fail(err)
	}
	if !bytes.Equal(root[:], cp.Hash) {
		return fail(fmt.Errorf("entries hash to root %x, checkpoint says %x", root[:], cp.Hash))
	}
	top := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, tileReader{hl})

	var errs []error
	for _, s := range it.Sizes {
		if err := checkSize(hl, st, records, top, size, root, s); err != nil {
			errs = append(errs, fmt.Errorf("size %d: %w", s, err))
			if len(errs) >= 5 {
				break
			}
			continue
		}
		res.Checked++
	}
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	res.OK = len(res.Errors) == 0
	return res
}

func checkSize(hl *httpLog, st *store, records [][]byte, top tlog.HashReader, size int64, root tlog.Hash, s int64) error {
	if s < 1 || s > size {
		return fmt.Errorf("outside 1..%d", size)
	}
	rootS, err := tlog.TreeHash(s, st)
	if err != nil {
		return err
	}
	// Every hash tile this size adds over the one before, partial ones included.
	for _, t := range tlog.NewTiles(tileHeight, s-1, s) {
		want, err := tlog.ReadTileData(t, st)
		if err != nil {
			return err
		}
		got, err := hl.get(c2spPath(t))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs from tlog.ReadTileData", c2spPath(t))
		}
	}
	// The entry bundle as a client at this size asks for it.
	dt := dataTile(s)
	b, err := hl.get(c2spPath(dt))
	if err != nil {
		return err
	}
	recs, err := splitBundle(b)
	if err != nil {
		return fmt.Errorf("%s: %w", c2spPath(dt), err)
	}
	if len(recs) != dt.W {
		return fmt.Errorf("%s: %d entries, want %d", c2spPath(dt), len(recs), dt.W)
	}
	for j, r := range recs {
		if !bytes.Equal(r, records[dt.N<<tileHeight+int64(j)]) {
			return fmt.Errorf("%s: entry %d differs from the full bundle", c2spPath(dt), j)
		}
	}
	// Proofs from served tiles only, each tile checked against the size's root by TileHashReader.
	thr := tlog.TileHashReader(tlog.Tree{N: s, Hash: rootS}, tileReader{hl})
	for _, i := range []int64{0, s / 2, s - 1} {
		p, err := tlog.ProveRecord(s, i, thr)
		if err != nil {
			return fmt.Errorf("tlog.ProveRecord(%d, %d): %w", s, i, err)
		}
		if err := tlog.CheckRecord(p, s, rootS, i, tlog.RecordHash(records[i])); err != nil {
			return fmt.Errorf("tlog.CheckRecord(%d, %d): %w", s, i, err)
		}
	}
	if s < size {
		p, err := tlog.ProveTree(size, s, top)
		if err != nil {
			return fmt.Errorf("tlog.ProveTree(%d, %d): %w", size, s, err)
		}
		if err := tlog.CheckTree(p, size, root, s, rootS); err != nil {
			return fmt.Errorf("tlog.CheckTree(%d, %d): %w", size, s, err)
		}
	}
	return nil
}
