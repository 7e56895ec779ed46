package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/keyturn/keyturn/secret"
)

// SecretInfo describes a managed secret without any material: what an incident's scope
// and dry run show.
type SecretInfo struct {
	ID    secret.ID `json:"id"`
	Kind  string    `json:"kind"`
	Tags  []string  `json:"tags,omitempty"`
	Store string    `json:"store"`
	// Target says where the credential is used, e.g. "postgres 10.0.0.5:5432 role app".
	Target string `json:"target"`
}

// Catalog lists the secrets this worker manages, typically its inventory.
type Catalog interface {
	Secrets() []SecretInfo
}

// Selector picks an incident's scope. A secret is in scope when it matches every
// criterion given: one of IDs, all of Tags, Kind, and Prefix. An empty selector matches
// nothing, so a typo never turns into "everything".
type Selector struct {
	IDs    []secret.ID `json:"ids,omitempty"`
	Tags   []string    `json:"tags,omitempty"`
	Kind   string      `json:"kind,omitempty"`
	Prefix string      `json:"prefix,omitempty"`
}

// Empty reports whether the selector has no criterion.
func (s Selector) Empty() bool {
	return len(s.IDs) == 0 && len(s.Tags) == 0 && s.Kind == "" && s.Prefix == ""
}

// String renders the selector as the CLI's --select syntax.
func (s Selector) String() string {
	var parts []string
	for _, id := range s.IDs {
		parts = append(parts, "id="+string(id))
	}
	for _, t := range s.Tags {
		parts = append(parts, "tag="+t)
	}
	if s.Kind != "" {
		parts = append(parts, "kind="+s.Kind)
	}
	if s.Prefix != "" {
		parts = append(parts, "prefix="+s.Prefix)
	}
	return strings.Join(parts, ",")
}

// Matches reports whether the secret is in scope.
func (s Selector) Matches(info SecretInfo) bool {
	if s.Empty() {
		return false
	}
	if len(s.IDs) > 0 && !slices.Contains(s.IDs, info.ID) {
		return false
	}
	for _, t := range s.Tags {
		if !slices.Contains(info.Tags, t) {
			return false
		}
	}
	return (s.Kind == "" || info.Kind == s.Kind) && strings.HasPrefix(string(info.ID), s.Prefix)
}

// Select returns the secrets of the catalog in scope, sorted by ID. Naming an ID the
// catalog does not hold is an error, since the operator meant a secret Keyturn cannot
// contain.
func Select(all []SecretInfo, s Selector) ([]SecretInfo, error) {
	var unknown []string
	for _, id := range s.IDs {
		if !slices.ContainsFunc(all, func(i SecretInfo) bool { return i.ID == id }) {
			unknown = append(unknown, string(id))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %s not in the worker's inventory; check the ID (keyturn status lists the managed secrets)", ErrUnknownSecret, strings.Join(unknown, ", "))
	}
	var out []SecretInfo
	for _, info := range all {
		if s.Matches(info) {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// SchedulePauser pauses and resumes the schedules of secrets.
type SchedulePauser interface {
	Pause(ctx context.Context, ids []secret.ID, note string) error
	Resume(ctx context.Context, ids []secret.ID, note string) error
}

// IncidentActivities are the incident playbook's activities: they read the catalog and
// act on other workflows and schedules through the Temporal client.
type IncidentActivities struct {
	client    client.Client
	catalog   Catalog
	schedules SchedulePauser
}

// NewIncidentActivities builds them; schedules may be nil when this worker manages none.
func NewIncidentActivities(c client.Client, catalog Catalog, schedules SchedulePauser) *IncidentActivities {
	return &IncidentActivities{client: c, catalog: catalog, schedules: schedules}
}

// Scope resolves a selector against the worker's inventory.
func (a *IncidentActivities) Scope(_ context.Context, s Selector) ([]SecretInfo, error) {
	if a.catalog == nil {
		return nil, temporal.NewNonRetryableApplicationError("this worker has no inventory to select from", ErrTypeInvalidConfig, nil)
	}
	out, err := Select(a.catalog.Secrets(), s)
	if err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// SchedulesInput names secrets whose schedules change, and the note recorded with it.
type SchedulesInput struct {
	IDs  []secret.ID `json:"ids"`
	Note string      `json:"note"`
}

// PauseSchedules pauses the schedules of the secrets, so no scheduled rotation starts
// while an incident works on them.
func (a *IncidentActivities) PauseSchedules(ctx context.Context, in SchedulesInput) error {
	if a.schedules == nil {
		return nil
	}
	return a.schedules.Pause(ctx, in.IDs, in.Note)
}

// ResumeSchedules resumes them.
func (a *IncidentActivities) ResumeSchedules(ctx context.Context, in SchedulesInput) error {
	if a.schedules == nil {
		return nil
	}
	return a.schedules.Resume(ctx, in.IDs, in.Note)
}

// StopInput names the rotation workflow an incident stops.
type StopInput struct {
	WorkflowID string `json:"workflowId"`
	Reason     string `json:"reason"`
}

// StopRotation terminates the running workflow, if any, and reports whether one ran.
// Terminating, not cancelling: a cancelled rotation would run its compensation, which may
// promote the previous version again, one an incident is revoking. The incident cleans up
// after it instead (Supersede), without promoting anything.
func (a *IncidentActivities) StopRotation(ctx context.Context, in StopInput) (bool, error) {
	err := a.client.TerminateWorkflow(ctx, in.WorkflowID, "", in.Reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("terminate %s: %w", in.WorkflowID, err)
	}
	return true, nil
}
