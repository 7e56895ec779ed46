package audit

import (
	"crypto/ed25519"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Problem is one thing Verify found wrong, placed by chain and position.
type Problem struct {
	Chain string `json:"chain"`
	// Seq is the position (1-based) the problem is at; 0 when it is about the chain or a
	// checkpoint as a whole.
	Seq  int64  `json:"seq,omitempty"`
	What string `json:"what"`
}

func (p Problem) String() string {
	if p.Seq > 0 {
		return fmt.Sprintf("%s #%d: %s", p.Chain, p.Seq, p.What)
	}
	if p.Chain != "" {
		return fmt.Sprintf("%s: %s", p.Chain, p.What)
	}
	return p.What
}

// Report is the result of Verify.
type Report struct {
	Chains      int `json:"chains"`
	Records     int `json:"records"`
	Checkpoints int `json:"checkpoints"`
	// Trusted counts the checkpoints whose signature verified with a trusted key.
	Trusted int `json:"trustedCheckpoints"`
	// Uncovered counts records after the last trusted checkpoint of their chain: their
	// chain links are checked, but a rewrite of them alone could not be told from the
	// original until the next checkpoint signs them.
	Uncovered int `json:"uncovered"`
	// LastCheckpoint is the time of the newest trusted checkpoint.
	LastCheckpoint time.Time `json:"lastCheckpoint,omitzero"`
	Problems       []Problem `json:"problems,omitempty"`
}

// OK reports whether Verify found nothing wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify checks records (as a sink returns them: each chain in stored order) and
// checkpoints against trusted keys:
//   - every record's hash matches its contents (an edited field),
//   - positions run 1, 2, 3 without a gap or a repeat and each record's Prev is the hash
//     of the one before (a deleted or swapped record),
//   - no event ID appears twice,
//   - every trusted checkpoint's head matches the record at its position (a chain
//     rewritten and rehashed) and no chain is shorter than a checkpoint says (a truncated
//     tail, a deleted chain),
//   - every checkpoint's signature verifies with one of keys.
//
// When only some chains are given (chains non-nil), checkpoint heads of other chains are
// not checked.
func Verify(records []Record, checkpoints []Checkpoint, keys []ed25519.PublicKey, chains []string) Report {
	var rep Report
	byChain := map[string][]Record{}
	var order []string
	var unreadable []Problem
	for _, r := range records {
		if r.Chain == UnreadableChain {
			unreadable = append(unreadable, Problem{Chain: UnreadableChain, Seq: r.Seq, What: r.Error + ": edited or damaged after it was written; the record it held is missing from its chain"})
			continue
		}
		if _, ok := byChain[r.Chain]; !ok {
			order = append(order, r.Chain)
		}
		byChain[r.Chain] = append(byChain[r.Chain], r)
	}
	rep.Chains, rep.Records = len(order), len(records)
	rep.Problems = unreadable
	seen := map[string]string{}
	for _, chain := range order {
		rep.Problems = append(rep.Problems, verifyChain(chain, byChain[chain], seen)...)
	}

	rep.Checkpoints = len(checkpoints)
	trusted := func(cp Checkpoint) bool { return cp.VerifySignature(keys) }
	for _, cp := range checkpoints {
		if !trusted(cp) {
			rep.Problems = append(rep.Problems, Problem{What: fmt.Sprintf("checkpoint of %s (key %s, over %s) has a signature no trusted key verifies: forged, altered, or signed by a key not given to verify", cp.Time.Format(time.RFC3339), cp.KeyID, headList(cp.Heads))})
			continue
		}
		rep.Trusted++
		if cp.Time.After(rep.LastCheckpoint) {
			rep.LastCheckpoint = cp.Time
		}
		for _, h := range cp.Heads {
			if chains != nil && !contains(chains, h.Chain) {
				continue
			}
			rs := byChain[h.Chain]
			switch {
			case int64(len(rs)) < h.Count:
				rep.Problems = append(rep.Problems, Problem{Chain: h.Chain, What: fmt.Sprintf("the checkpoint of %s signed %d records, only %d are here: records were removed from the end (or the whole chain)", cp.Time.Format(time.RFC3339), h.Count, len(rs))})
			case h.Count > 0 && rs[h.Count-1].Hash != h.Hash:
				rep.Problems = append(rep.Problems, Problem{Chain: h.Chain, Seq: h.Count, What: fmt.Sprintf("differs from the checkpoint of %s: the chain was rewritten up to here", cp.Time.Format(time.RFC3339))})
			}
		}
	}
	covered := latestHeads(checkpoints, trusted)
	for _, chain := range order {
		if n := int64(len(byChain[chain])) - covered[chain].Count; n > 0 {
			rep.Uncovered += int(n)
		}
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool {
		if rep.Problems[i].Chain != rep.Problems[j].Chain {
			return rep.Problems[i].Chain < rep.Problems[j].Chain
		}
		return rep.Problems[i].Seq < rep.Problems[j].Seq
	})
	return rep
}

// headList names a checkpoint's heads as chain#count, the first few only.
func headList(heads []Head) string {
	const most = 5
	parts := make([]string, 0, most+1)
	for i, h := range heads {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(heads)-most))
			break
		}
		if h.Count == 0 && h.Hash == "" {
			parts = append(parts, h.Chain) // an unreadable line, named by its place
			continue
		}
		parts = append(parts, fmt.Sprintf("%s#%d", h.Chain, h.Count))
	}
	if len(parts) == 0 {
		return "no chains"
	}
	return strings.Join(parts, ", ")
}

// verifyChain checks one chain's hashes, positions and links, and its event IDs against
// seen (ID to where it was first seen).
func verifyChain(chain string, rs []Record, seen map[string]string) []Problem {
	var ps []Problem
	prev := ""
	for i, r := range rs {
		pos := int64(i + 1)
		if h := r.ComputeHash(); h != r.Hash {
			ps = append(ps, Problem{Chain: chain, Seq: pos, What: "contents do not match the record's hash: a field was changed after it was written"})
		}
		if r.Seq != pos {
			ps = append(ps, Problem{Chain: chain, Seq: pos, What: fmt.Sprintf("holds record #%d: a record before it was removed, or records were reordered", r.Seq)})
		}
		if r.Prev != prev {
			ps = append(ps, Problem{Chain: chain, Seq: pos, What: "does not link to the record before it: a record was removed, inserted or moved here"})
		}
		if where, dup := seen[r.ID]; dup && r.ID != "" {
			ps = append(ps, Problem{Chain: chain, Seq: pos, What: "repeats the event of " + where})
		} else {
			seen[r.ID] = fmt.Sprintf("%s #%d", chain, pos)
		}
		prev = r.Hash
	}
	return ps
}
