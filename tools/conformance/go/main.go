// Command conformance verifies clinical-ledger checkpoints and Merkle proofs with the Go
// ecosystem's reference implementations only (golang.org/x/mod/sumdb/note and sumdb/tlog,
// github.com/transparency-dev/merkle and transparency-dev/formats). None of the ledger's own
// code takes part, so agreement here means our formats are the standard ones.
//
// Input (stdin): one JSON document
//
//	{
//	  "notes":       [{"vkey": "...", "note": "...", "origin": "...", "witnesses": ["<cosignature/v1 vkey>"], "quorum": 1}],
//	  "trees":       [{"leaves": ["<hex leaf hash>", ...]}],
//	  "inclusion":   [{"index": 0, "size": 1, "leafHash": "<hex>", "proof": ["<hex>"], "root": "<hex>", "tree": 0}],
//	  "consistency": [{"m": 1, "n": 2, "rootM": "<hex>", "rootN": "<hex>", "proof": ["<hex>"], "tree": 0}],
//	  "tiles":       [{"url": "<C2SP tlog-tiles prefix/>", "vkey": "...", "origin": "...", "token": "...", "sizes": [1, 2]}]
//	}
//
// "tiles" reads a live log over HTTP (see tiles.go).
//
// "tree" is optional: when present, the proof is also regenerated in Go (transparency-dev/merkle's
// proof.Inclusion/Consistency node selection over tlog-computed hashes) and must be identical.
//
// Output (stdout): {"notes": [...], "inclusion": [...], "consistency": [...], "tiles": [...]}, one result per
// input item, in order: {"ok": true, ...} or {"ok": false, "errors": ["..."]}.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type noteItem struct {
	VKey   string `json:"vkey"`
	Note   string `json:"note"`
	Origin string `json:"origin"`
	// Witnesses are C2SP tlog-cosignature (cosignature/v1) verifier keys; Quorum how many must
	// have cosigned the note for it to pass.
	Witnesses []string `json:"witnesses"`
	Quorum    int      `json:"quorum"`
}

type treeItem struct {
	Leaves []string `json:"leaves"`
}

type inclusionItem struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash string   `json:"leafHash"`
	Proof    []string `json:"proof"`
	Root     string   `json:"root"`
	Tree     *int     `json:"tree"`
}

type consistencyItem struct {
	M     uint64   `json:"m"`
	N     uint64   `json:"n"`
	RootM string   `json:"rootM"`
	RootN string   `json:"rootN"`
	Proof []string `json:"proof"`
	Tree  *int     `json:"tree"`
}

type input struct {
	Notes       []noteItem        `json:"notes"`
	Trees       []treeItem        `json:"trees"`
	Inclusion   []inclusionItem   `json:"inclusion"`
	Consistency []consistencyItem `json:"consistency"`
	Tiles       []tilesItem       `json:"tiles"`
}

type result struct {
	OK     bool     `json:"ok"`
	Errors []string `json:"errors,omitempty"`
	Origin string   `json:"origin,omitempty"`
	Size   *uint64  `json:"size,omitempty"`
	Root   string   `json:"root,omitempty"`
	Signed []string `json:"signedBy,omitempty"`
	// Cosigned lists the witnesses (name+hash) whose cosignatures verified.
	Cosigned []string `json:"cosignedBy,omitempty"`
}

type output struct {
	Notes       []result      `json:"notes"`
	Inclusion   []result      `json:"inclusion"`
	Consistency []result      `json:"consistency"`
	Tiles       []tilesResult `json:"tiles"`
}

// store is a complete in-memory tlog hash store built from leaf hashes.
type store struct {
	hashes []tlog.Hash
	n      int64
}

func (s *store) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("hash index %d out of range", x)
		}
		out[i] = s.hashes[x]
	}
	return out, nil
}

func buildStore(leaves []string) (*store, error) {
	s := &store{}
	for i, l := range leaves {
		h, err := hash32(l)
		if err != nil {
			return nil, fmt.Errorf("leaf %d: %w", i, err)
		}
		add, err := tlog.StoredHashesForRecordHash(s.n, h, s)
		if err != nil {
			return nil, err
		}
		s.hashes = append(s.hashes, add...)
		s.n++
	}
	return s, nil
}

// goProof computes a proof the transparency-dev/merkle way: its node selection, hashes read
// from tlog storage (tlog.StoredHashIndex addresses the same complete subtrees).
func goProof(nodes proof.Nodes, s *store) ([][]byte, error) {
	hs := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		idx := tlog.StoredHashIndex(int(id.Level), int64(id.Index))
		got, err := s.ReadHashes([]int64{idx})
		if err != nil {
			return nil, err
		}
		hs[i] = got[0][:]
	}
	return nodes.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
}

func hash32(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := hex.DecodeString(s)
	if err != nil {
		return h, err
	}
	if len(b) != tlog.HashSize {
		return h, fmt.Errorf("hash has %d bytes", len(b))
	}
	copy(h[:], b)
	return h, nil
}

func decodeAll(ss []string) ([][]byte, error) {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func toTlog(bs [][]byte) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(bs))
	for i, b := range bs {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof[%d] has %d bytes", i, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func sameProof(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// decodeProofItem decodes the two hex hashes and the hex proof of a proof item.
func decodeProofItem(a, b string, proofHex []string) ([]byte, []byte, [][]byte, error) {
	x, err1 := hex.DecodeString(a)
	y, err2 := hex.DecodeString(b)
	pr, err3 := decodeAll(proofHex)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, nil, nil, fmt.Errorf("bad hex: %w", err)
	}
	return x, y, pr, nil
}

// sameAsGenerated compares a proof with the one transparency-dev/merkle generates from the same
// tree (nodes and nodesErr: what proof.Inclusion or proof.Consistency returned).
// tlogArgs is a proof and two hex hashes as x/mod/sumdb/tlog takes them, with every decoding error.
func tlogArgs(pr [][]byte, a, b string) ([]tlog.Hash, tlog.Hash, tlog.Hash, error) {
	tp, err := toTlog(pr)
	ha, errA := hash32(a)
	hb, errB := hash32(b)
	return tp, ha, hb, errors.Join(err, errA, errB)
}

// wrapped names the check that failed; nil stays nil.
func wrapped(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// viaTlog checks a proof a second time with golang.org/x/mod/sumdb/tlog, given its two hex hashes
// (leaf and root, or the two roots); `what` names the tlog check.
func viaTlog(pr [][]byte, a, b, what string, check func(p []tlog.Hash, ha, hb tlog.Hash) error) error {
	tp, ha, hb, err := tlogArgs(pr, a, b)
	if err != nil {
		return wrapped("tlog", err)
	}
	return wrapped(what, check(tp, ha, hb))
}

// appendErr appends err when there is one.
func appendErr(errs []error, err error) []error {
	if err != nil {
		return append(errs, err)
	}
	return errs
}

func sameAsGenerated(nodes proof.Nodes, nodesErr error, tree *store, pr [][]byte) error {
	if nodesErr != nil {
		return fmt.Errorf("regenerate: %w", nodesErr)
	}
	want, err := goProof(nodes, tree)
	if err != nil {
		return fmt.Errorf("regenerate: %w", err)
	}
	if !sameProof(want, pr) {
		return errors.New("regenerate: proof differs from the one transparency-dev/merkle generates")
	}
	return nil
}

func finish(errs []error) result {
	r := result{OK: len(errs) == 0}
	for _, e := range errs {
		r.Errors = append(r.Errors, e.Error())
	}
	return r
}

func checkNote(it noteItem) result {
	v, err := note.NewVerifier(it.VKey)
	if err != nil {
		return finish([]error{fmt.Errorf("note.NewVerifier: %w", err)})
	}
	verifiers := []note.Verifier{v}
	witness := map[string]bool{}
	for _, w := range it.Witnesses {
		wv, err := fnote.NewVerifierForCosignatureV1(w)
		if err != nil {
			return finish([]error{fmt.Errorf("formats/note.NewVerifierForCosignatureV1(%q): %w", w, err)})
		}
		verifiers = append(verifiers, wv)
		witness[fmt.Sprintf("%s+%08x", wv.Name(), wv.KeyHash())] = true
	}
	n, err := note.Open([]byte(it.Note), note.VerifierList(verifiers...))
	if err != nil {
		return finish([]error{fmt.Errorf("note.Open: %w", err)})
	}
	cp, _, _, err := log.ParseCheckpoint([]byte(it.Note), it.Origin, v)
	if err != nil {
		return finish([]error{fmt.Errorf("log.ParseCheckpoint: %w", err)})
	}
	r := result{OK: true, Origin: cp.Origin, Size: &cp.Size, Root: hex.EncodeToString(cp.Hash)}
	for _, s := range n.Sigs {
		id := fmt.Sprintf("%s+%08x", s.Name, s.Hash)
		r.Signed = append(r.Signed, id)
		if witness[id] {
			r.Cosigned = append(r.Cosigned, id)
		}
	}
	if len(r.Cosigned) < it.Quorum {
		r.OK = false
		r.Errors = append(r.Errors, fmt.Sprintf("%d of %d required witness cosignatures", len(r.Cosigned), it.Quorum))
	}
	return r
}

// checkProof runs one proof item's checks: its two hashes and proof decoded, then `checks` (the
// proof verified by each library), then, when the item names a tree, the proof compared with the
// one generated from that tree.
func checkProof(a, b string, proofHex []string, tree *int, trees []*store, checks func(ha, hb []byte, pr [][]byte) []error, generate func() (proof.Nodes, error)) result {
	ha, hb, pr, err := decodeProofItem(a, b, proofHex)
	if err != nil {
		return finish([]error{err})
	}
	errs := checks(ha, hb, pr)
	if tree != nil {
		nodes, err := generate()
		errs = appendErr(errs, sameAsGenerated(nodes, err, trees[*tree], pr))
	}
	return finish(errs)
}

func checkInclusion(it inclusionItem, trees []*store) result {
	return checkProof(it.LeafHash, it.Root, it.Proof, it.Tree, trees, func(leaf, root []byte, pr [][]byte) []error {
		return appendErr(appendErr(nil,
			wrapped("merkle/proof.VerifyInclusion", proof.VerifyInclusion(rfc6962.DefaultHasher, it.Index, it.Size, leaf, pr, root))),
			viaTlog(pr, it.LeafHash, it.Root, "tlog.CheckRecord", func(tp []tlog.Hash, lh, th tlog.Hash) error {
				return tlog.CheckRecord(tp, int64(it.Size), th, int64(it.Index), lh)
			}))
	}, func() (proof.Nodes, error) { return proof.Inclusion(it.Index, it.Size) })
}

func checkConsistency(it consistencyItem, trees []*store) result {
	return checkProof(it.RootM, it.RootN, it.Proof, it.Tree, trees, func(r1, r2 []byte, pr [][]byte) []error {
		errs := appendErr(nil, wrapped("merkle/proof.VerifyConsistency", proof.VerifyConsistency(rfc6962.DefaultHasher, it.M, it.N, pr, r1, r2)))
		// tlog has no notion of the empty tree; it checks every non-empty prefix.
		if it.M > 0 {
			errs = appendErr(errs, viaTlog(pr, it.RootM, it.RootN, "tlog.CheckTree", func(tp []tlog.Hash, h1, h2 tlog.Hash) error {
				return tlog.CheckTree(tp, int64(it.N), h2, int64(it.M), h1)
			}))
		}
		return errs
	}, func() (proof.Nodes, error) { return proof.Consistency(it.M, it.N) })
}

func run() error {
	var in input
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	trees := make([]*store, len(in.Trees))
	for i, t := range in.Trees {
		s, err := buildStore(t.Leaves)
		if err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
		trees[i] = s
	}
	treeOK := func(p *int) error {
		if p != nil && (*p < 0 || *p >= len(trees)) {
			return fmt.Errorf("unknown tree %d", *p)
		}
		return nil
	}
	out := output{Notes: []result{}, Inclusion: []result{}, Consistency: []result{}, Tiles: []tilesResult{}}
	for _, it := range in.Notes {
		out.Notes = append(out.Notes, checkNote(it))
	}
	for _, it := range in.Inclusion {
		if err := treeOK(it.Tree); err != nil {
			return err
		}
		out.Inclusion = append(out.Inclusion, checkInclusion(it, trees))
	}
	for _, it := range in.Consistency {
		if err := treeOK(it.Tree); err != nil {
			return err
		}
		out.Consistency = append(out.Consistency, checkConsistency(it, trees))
	}
	for _, it := range in.Tiles {
		out.Tiles = append(out.Tiles, checkTiles(it))
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
}
