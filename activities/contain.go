package activities

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/rotation"
	"github.com/keyturn/keyturn/rotators"
	"github.com/keyturn/keyturn/secret"
)

// ContainBatchInput names secrets to contain in one activity.
type ContainBatchInput struct {
	SecretIDs []secret.ID `json:"secretIds"`
	// Parallelism bounds the secrets contained at once; 0 means DefaultContainParallelism.
	Parallelism int `json:"parallelism,omitempty"`
	// Cause is the incident, for the audit trail.
	Cause *Cause `json:"cause,omitempty"`
}

// DefaultContainParallelism keeps a batch's admin connections well below a database's
// default max_connections (100).
const DefaultContainParallelism = 16

// ContainedSecret is one secret of a batch: when it was contained, or why it was not.
type ContainedSecret struct {
	ID    secret.ID `json:"id"`
	At    time.Time `json:"at,omitzero"`
	Error string    `json:"error,omitempty"`
	// Ended are the uses the containment ended (rotation.ContainResult.Ended).
	Ended []rotators.Use `json:"ended,omitempty"`
}

// ContainBatch contains many secrets in one activity, which is what makes an incident's
// containment fast: revoking is a few statements per secret, while a workflow step per
// secret costs the server several round trips. It works in three rounds: each secret's
// versions are read (rotation.Steps.PrepareContain) and every start recorded; the
// versions of secrets on one target are revoked together where the kind can
// (rotators.GroupRevoker: one admin session and a few transactions for a whole server),
// each secret's alone otherwise; then each containment is finished (purge, discard) and
// every end recorded. A secret that fails is reported, not retried
// here; the incident's per-secret rotation contains it again. Every step is idempotent,
// so a retried batch simply revokes again.
func (a *Activities) ContainBatch(ctx context.Context, in ContainBatchInput) ([]ContainedSecret, error) {
	parallel := in.Parallelism
	if parallel <= 0 {
		parallel = DefaultContainParallelism
	}
	if a.urgent != nil {
		defer a.urgent.Urgent()()
	}
	hb := a.heartbeat(ctx)
	defer hb.stop()
	t0 := time.Now()
	items := make([]containItem, len(in.SecretIDs))
	eachParallel(len(items), parallel, func(i int) { items[i] = a.prepareContain(ctx, in.SecretIDs[i]) })
	// Every start is recorded before anything changes, all at once: the trail commits the
	// records waiting together with one sync, so a batch waits for a sync or two, not one
	// per round of parallel secrets (on a busy disk that was most of a batch's time).
	eachParallel(len(items), len(items), func(i int) { a.recordStarted(ctx, &items[i], in.Cause) })
	prepared := time.Now()

	// Revoke: one call per group of secrets on one target, one per other secret.
	groups := map[any][]int{}
	var groupOrder []any
	var alone []int
	for i, it := range items {
		if it.err != nil {
			continue
		}
		g, ok := it.binding.Steps.Rotator.(rotators.GroupRevoker)
		if !ok {
			alone = append(alone, i)
			continue
		}
		key := g.GroupKey()
		if _, seen := groups[key]; !seen {
			groupOrder = append(groupOrder, key)
		}
		groups[key] = append(groups[key], i)
	}
	work := make([]func(), 0, len(groupOrder)+len(alone))
	for _, key := range groupOrder {
		work = append(work, func() { revokeGroup(ctx, items, groups[key]) })
	}
	for _, i := range alone {
		work = append(work, func() { items[i].revokeAlone(ctx) })
	}
	eachParallel(len(work), parallel, func(j int) { work[j]() })
	revoked := time.Now()

	out := make([]ContainedSecret, len(items))
	eachParallel(len(items), parallel, func(i int) { out[i] = finishContain(ctx, &items[i]) })
	eachParallel(len(items), len(items), func(i int) { a.recordContained(ctx, &items[i], in.Cause) }) // all at once, as the starts
	activity.GetLogger(ctx).Info("containment batch done", "secrets", len(items), "groups", len(groupOrder), "alone", len(alone),
		"prepare", prepared.Sub(t0).Round(time.Millisecond), "revoke", revoked.Sub(prepared).Round(time.Millisecond),
		"finish", time.Since(revoked).Round(time.Millisecond))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// containItem is one secret of a batch between the rounds.
type containItem struct {
	id       secret.ID
	binding  Binding
	resolved bool
	c        rotation.Containment
	err      error
}

// prepareContain resolves one secret and reads what to revoke.
func (a *Activities) prepareContain(ctx context.Context, id secret.ID) containItem {
	it := containItem{id: id}
	it.binding, it.err = a.resolve(ctx, id)
	if it.err != nil {
		return it
	}
	it.resolved = true
	it.c, it.err = it.binding.Steps.PrepareContain(ctx)
	return it
}

// revokeAlone lists the uses of the item's versions and revokes them one by one with its
// own rotator.
func (it *containItem) revokeAlone(ctx context.Context) {
	it.binding.Steps.ListUses(ctx, &it.c)
	for _, v := range it.c.Versions {
		if err := it.binding.Steps.Rotator.Revoke(ctx, v.Request()); err != nil {
			it.err = fmt.Errorf("contain: revoke %s version %d: %w", v.Stage, v.Version.Number, err)
			return
		}
	}
}

// revokeGroup revokes the versions of the items at idx, all on one target, in one call.
func revokeGroup(ctx context.Context, items []containItem, idx []int) {
	var members []rotators.GroupMember
	type ref struct{ item, version int }
	var refs []ref
	for _, i := range idx {
		g := items[i].binding.Steps.Rotator.(rotators.GroupRevoker)
		for j, v := range items[i].c.Versions {
			members = append(members, rotators.GroupMember{Rotator: g, Request: v.Request()})
			refs = append(refs, ref{i, j})
		}
	}
	if len(members) == 0 {
		return
	}
	outcomes := members[0].Rotator.RevokeGroup(ctx, members)
	if len(outcomes) != len(members) { // a kind's bug must not read as a success
		bad := rotators.GroupOutcome{Err: fmt.Errorf("revoke group: %d outcomes for %d versions", len(outcomes), len(members))}
		outcomes = slices.Repeat([]rotators.GroupOutcome{bad}, len(members))
	}
	for k, o := range outcomes {
		it := &items[refs[k].item]
		it.c.AddEnded(o.Ended)
		if o.Err != nil && it.err == nil {
			v := it.c.Versions[refs[k].version]
			it.err = fmt.Errorf("contain: revoke %s version %d: %w", v.Stage, v.Version.Number, o.Err)
		}
	}
}

// finishContain purges and discards what the item's containment revoked.
func finishContain(ctx context.Context, it *containItem) ContainedSecret {
	out := ContainedSecret{ID: it.id}
	var res rotation.ContainResult
	if it.err == nil {
		res, it.err = it.binding.Steps.FinishContain(ctx, it.c)
	}
	if it.err != nil {
		out.Error = it.err.Error()
		return out
	}
	out.At, out.Ended = time.Now(), res.Ended
	return out
}

// recordStarted records the start of the item's containment, for a secret that resolved
// (one that did not has no chain to record in).
func (a *Activities) recordStarted(ctx context.Context, it *containItem, cause *Cause) {
	if it.resolved {
		a.containRecord(ctx, it.binding, stepRef{secretID: it.id, cause: cause}, audit.EventStepStarted, nil)
	}
}

// recordContained records how the item's containment ended: succeeded, or failed for a
// secret that resolved (one that did not has no chain to record in).
func (a *Activities) recordContained(ctx context.Context, it *containItem, cause *Cause) {
	ref := stepRef{secretID: it.id, cause: cause}
	switch {
	case it.err == nil:
		a.containRecord(ctx, it.binding, ref, audit.EventStepSucceeded, nil)
	case it.resolved:
		a.containRecord(ctx, it.binding, ref, audit.EventStepFailed, classify(it.err))
	}
}

// eachParallel calls f(0) to f(n-1), at most parallel at a time, and waits for them.
func eachParallel(n, parallel int, f func(i int)) {
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// containRecord records one secret's containment in a batch, in that secret's chain. The
// batch is one activity, so the secret ID is part of the event's identity.
//
// Unlike a rotation's steps, containment does not wait for the audit trail: a leaked
// credential is refused now, and a record that cannot be written is logged as an error.
func (a *Activities) containRecord(ctx context.Context, b Binding, ref stepRef, event string, err error) {
	r := audit.Record{Event: event, Step: "contain"}
	key := []string{string(ref.secretID), event}
	if err != nil {
		key = append(key, withFailure(ctx, &r, err))
	}
	r.ID = stepEventID(ctx, key...)
	if err := a.record(ctx, b, ref, r); err != nil {
		logUnrecorded(ctx, r, err)
	}
}
