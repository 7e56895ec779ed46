package schedules

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/secret"
)

// Default notes, for a pause or resume that gives none.
const (
	DefaultPauseNote  = "paused by keyturn"
	DefaultResumeNote = "resumed by keyturn"
)

// Pause pauses every Keyturn schedule of the secrets (the cron schedule and, for a
// certificate, the renewal check) with note, which Temporal shows beside the schedule
// and which keyturn apply keeps. A secret without schedules is skipped: there is
// nothing of it to pause. Pausing a paused schedule replaces its note. It returns the
// IDs of the schedules it paused.
func Pause(ctx context.Context, c client.Client, ids []secret.ID, note string) ([]string, error) {
	if note == "" {
		note = DefaultPauseNote
	}
	return eachSchedule(ctx, c, ids, func(h client.ScheduleHandle) error {
		return h.Pause(ctx, client.SchedulePauseOptions{Note: note})
	})
}

// Resume resumes every Keyturn schedule of the secrets, with note, and returns the IDs of
// the schedules it resumed. Runs missed while paused are not made up: a schedule resumes
// at its next time.
func Resume(ctx context.Context, c client.Client, ids []secret.ID, note string) ([]string, error) {
	if note == "" {
		note = DefaultResumeNote
	}
	return eachSchedule(ctx, c, ids, func(h client.ScheduleHandle) error {
		return h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	})
}

// directLimit is how many secrets eachSchedule addresses one by one; above it, it lists the
// schedules once instead.
const directLimit = 20

// eachSchedule runs do on each existing Keyturn schedule of the secrets. For a few secrets
// it addresses their schedules directly (a schedule created a moment ago is found). For
// more it lists the schedules once and acts on those of the secrets, so an incident over
// 10,000 secrets, most without a schedule, costs one list instead of 20,000 calls; a
// schedule created seconds ago may be missing from that list, but a run it starts still
// has to go through rotate/<id>, which the incident holds or stops.
func eachSchedule(ctx context.Context, c client.Client, ids []secret.ID, do func(client.ScheduleHandle) error) ([]string, error) {
	wanted := make(map[secret.ID]bool, len(ids))
	var candidates []string
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return nil, err
		}
		wanted[id] = true
		candidates = append(candidates, CronScheduleID(id), RenewalScheduleID(id))
	}
	if len(ids) > directLimit {
		existing, err := listIDs(ctx, c)
		if err != nil {
			return nil, err
		}
		candidates = candidates[:0]
		for _, sid := range existing {
			if id, ok := Managed(sid); ok && wanted[id] {
				candidates = append(candidates, sid)
			}
		}
	}
	var done []string
	for _, sid := range candidates {
		err := do(c.ScheduleClient().GetHandle(ctx, sid))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("schedule %s: %w", sid, err)
		}
		done = append(done, sid)
	}
	return done, nil
}

// Pauser pauses and resumes the schedules of secrets through a Temporal client; it is
// what the incident playbook's activities take to keep scheduled rotations from starting
// while an incident works on the same secrets.
type Pauser struct {
	Client client.Client
}

// Pause pauses the secrets' schedules; see the package function Pause.
func (p Pauser) Pause(ctx context.Context, ids []secret.ID, note string) error {
	_, err := Pause(ctx, p.Client, ids, note)
	return err
}

// Resume resumes the secrets' schedules; see the package function Resume.
func (p Pauser) Resume(ctx context.Context, ids []secret.ID, note string) error {
	_, err := Resume(ctx, p.Client, ids, note)
	return err
}
