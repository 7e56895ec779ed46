package schedules

import (
	"context"
	"fmt"
	"sync"

	"go.temporal.io/sdk/client"

	"github.com/keyturn/keyturn/activities"
	"github.com/keyturn/keyturn/secret"
)

// Default notes, for a pause or resume that gives none.
const (
	DefaultPauseNote  = "paused by keyturn"
	DefaultResumeNote = "resumed by keyturn"
)

// parallel bounds the schedule calls made at once when a whole scope's schedules are
// paused or resumed one by one.
const parallel = 16

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

// ScheduleIDs are the IDs a secret's schedules have, whether or not they exist.
func ScheduleIDs(ids []secret.ID) ([]string, error) {
	out := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return nil, err
		}
		out = append(out, CronScheduleID(id), RenewalScheduleID(id))
	}
	return out, nil
}

// eachSchedule runs do on each existing Keyturn schedule of the secrets, addressed by ID.
// It never lists: Temporal's schedule list is eventually consistent and misses a
// schedule created seconds ago, which an incident must pause all the same.
func eachSchedule(ctx context.Context, c client.Client, ids []secret.ID, do func(client.ScheduleHandle) error) ([]string, error) {
	candidates, err := ScheduleIDs(ids)
	if err != nil {
		return nil, err
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

// verdict is what pausing or resuming did to one schedule.
type verdict int

const (
	absent  verdict = iota // no such schedule
	changed                // paused (or resumed) with the note
	kept                   // left alone: paused for another reason, or not paused
)

// PauseScope pauses the Keyturn schedules of the secrets for an incident, addressing each
// by its ID (describe, then pause). A schedule paused already with another note was
// paused for another reason: it is left as it is and reported in KeptPaused, so that
// resuming after the incident cannot resume it. One paused with note already (an earlier
// attempt of the same incident) counts as paused by it.
//
// Between the describe and the pause an operator's own pause could land and have its note
// replaced; the window is one round trip, against the minutes of an incident.
func PauseScope(ctx context.Context, c client.Client, ids []secret.ID, note string) (activities.PausedSchedules, error) {
	var out activities.PausedSchedules
	candidates, err := ScheduleIDs(ids)
	if err != nil {
		return out, err
	}
	verdicts, err := each(ctx, c, candidates, func(sid string, h client.ScheduleHandle, st *client.ScheduleState) (verdict, error) {
		if st != nil && st.Paused {
			if st.Note == note {
				return changed, nil
			}
			return kept, nil
		}
		if err := h.Pause(ctx, client.SchedulePauseOptions{Note: note}); err != nil {
			if isNotFound(err) {
				return absent, nil // deleted meanwhile
			}
			return absent, fmt.Errorf("pause schedule %s: %w", sid, err)
		}
		return changed, nil
	})
	out.Paused, out.KeptPaused = verdicts.split(candidates)
	return out, err
}

// ResumePausedWith resumes those of the schedules that are paused with pausedNote, with
// note, and reports the others that exist as left: they were paused again for another
// reason, or resumed already (and possibly paused again) by someone else.
func ResumePausedWith(ctx context.Context, c client.Client, scheduleIDs []string, pausedNote, note string) (activities.ResumedSchedules, error) {
	var out activities.ResumedSchedules
	for _, sid := range scheduleIDs {
		if _, ok := Managed(sid); !ok {
			return out, fmt.Errorf("%q is not a Keyturn schedule ID (IDs start with %s or %s)", sid, CronPrefix, RenewalPrefix)
		}
	}
	if note == "" {
		note = DefaultResumeNote
	}
	verdicts, err := each(ctx, c, scheduleIDs, func(sid string, h client.ScheduleHandle, st *client.ScheduleState) (verdict, error) {
		if st == nil || !st.Paused || st.Note != pausedNote {
			return kept, nil
		}
		if err := h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}); err != nil {
			if isNotFound(err) {
				return absent, nil
			}
			return absent, fmt.Errorf("resume schedule %s: %w", sid, err)
		}
		return changed, nil
	})
	out.Resumed, out.Left = verdicts.split(scheduleIDs)
	return out, err
}

// describeThen describes one schedule and runs do on it; a schedule that does not exist is
// absent.
func describeThen(ctx context.Context, c client.Client, sid string, do func(string, client.ScheduleHandle, *client.ScheduleState) (verdict, error)) (verdict, error) {
	h := c.ScheduleClient().GetHandle(ctx, sid)
	d, err := h.Describe(ctx)
	if isNotFound(err) {
		return absent, nil
	}
	if err != nil {
		return absent, fmt.Errorf("describe schedule %s: %w", sid, err)
	}
	return do(sid, h, d.Schedule.State)
}

// verdicts are each's answers, by the index of the schedule ID they are about.
type verdicts []verdict

// split sorts sids into those changed and those kept; absent ones are in neither.
func (vs verdicts) split(sids []string) (changedIDs, keptIDs []string) {
	for i, v := range vs {
		switch v {
		case changed:
			changedIDs = append(changedIDs, sids[i])
		case kept:
			keptIDs = append(keptIDs, sids[i])
		}
	}
	return changedIDs, keptIDs
}

// each describes every schedule ID and runs do on those that exist, with the schedule's
// handle and state, at most parallel at once; it returns the verdicts by index (absent
// for a schedule that does not exist) and the first error. Every ID is tried even after an error, so a partial
// answer names everything that did change.
func each(ctx context.Context, c client.Client, sids []string, do func(sid string, h client.ScheduleHandle, st *client.ScheduleState) (verdict, error)) (verdicts, error) {
	out := make(verdicts, len(sids))
	errs := make([]error, len(sids))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, sid := range sids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = describeThen(ctx, c, sid, do)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Pauser pauses and resumes the schedules of secrets through a Temporal client; it is
// what the incident playbook's activities take to keep scheduled rotations from starting
// while an incident works on the same secrets.
type Pauser struct {
	Client client.Client
}

var _ activities.SchedulePauser = Pauser{}

// Pause pauses the secrets' schedules; see PauseScope.
func (p Pauser) Pause(ctx context.Context, ids []secret.ID, note string) (activities.PausedSchedules, error) {
	return PauseScope(ctx, p.Client, ids, note)
}

// Resume resumes the schedules still paused with pausedNote; see ResumePausedWith.
func (p Pauser) Resume(ctx context.Context, scheduleIDs []string, pausedNote, note string) (activities.ResumedSchedules, error) {
	return ResumePausedWith(ctx, p.Client, scheduleIDs, pausedNote, note)
}
