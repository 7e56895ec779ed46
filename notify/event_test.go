package notify

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/inventory"
	"github.com/keyturn/keyturn/secret"
)

// An event has no field that could hold material: no secret.Sensitive, no
// secret.Material, at any depth, and no interface or map that could smuggle one in.
func TestEventHasNoMaterialFields(t *testing.T) {
	sensitive := reflect.TypeFor[secret.Sensitive]()
	material := reflect.TypeFor[secret.Material]()
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		switch {
		case typ == sensitive || typ == material:
			t.Errorf("%s is a %s: events must never hold material", path, typ)
			return
		case typ.Kind() == reflect.Interface || typ.Kind() == reflect.Map:
			t.Errorf("%s is a %s, which could hold material; use a concrete type", path, typ)
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			if typ == reflect.TypeFor[time.Time]() {
				return
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				walk(path+"."+f.Name, f.Type)
			}
		case reflect.Slice, reflect.Array, reflect.Pointer:
			walk(path+"[]", typ.Elem())
		}
	}
	walk("Event", reflect.TypeFor[Event]())
}

// A canary passed in an error message reaches no body of any event type once it has
// gone through ErrorText, and the check can see it when it has not.
func TestNoEventBodyCarriesTheCanary(t *testing.T) {
	const canary = "CANARY-pa55w0rd-7f3a"
	cause := fmt.Errorf("test: log in as %q with %s: %w", "app_a", canary, errors.New("password authentication failed"))
	for _, typ := range append(Types(), Test) {
		e := Event{
			Type: typ, Time: time.Now(), SecretID: "prod/orders-db/app", Kind: "postgres", Tags: []string{"prod"},
			Owner: "payments", Step: "test", Outcome: "rolled_back", ErrorClass: "credential_rejected",
			ErrorMessage: ErrorText(cause, secret.NewSensitive(canary)),
			WorkflowID:   "rotate/prod/orders-db/app", RunID: "r1", IncidentID: "inc-1",
		}
		if strings.HasPrefix(string(typ), "incident_") {
			// An incident-wide event: about the incident, with its summary.
			e.SecretID, e.Kind, e.Tags, e.Owner, e.Step, e.WorkflowID, e.RunID = "", "", nil, "", "", "incident/inc-1", ""
			e.Incident = &Incident{Mode: "contain", Selector: "tag=prod", Reason: "key pasted in chat", Operator: "oncall",
				Secrets: 12, Contained: 11, NotContained: 1, Rotated: 10, Failed: 2, NeedsHuman: 2, ContainedSeconds: 4.2}
		}
		e = e.Seal()
		for _, format := range []string{inventory.NotifyFormatJSON, inventory.NotifyFormatSlack} {
			body, err := Body(format, e)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), canary) {
				t.Errorf("%s body of %s carries the canary: %s", format, typ, body)
			}
			if !strings.Contains(string(body), "password authentication failed") {
				t.Errorf("%s body of %s lost the error's useful part: %s", format, typ, body)
			}
			if e.Incident != nil && (!strings.Contains(string(body), "key pasted in chat") || !strings.Contains(string(body), "11")) {
				t.Errorf("%s body of %s lost the incident's summary: %s", format, typ, body)
			}
			// The control: unsanitised, the same text would be caught.
			raw := e
			raw.ErrorMessage = cause.Error()
			if b, _ := Body(format, raw); !strings.Contains(string(b), canary) {
				t.Fatalf("the canary scan cannot see an unsanitised message in the %s body", format)
			}
		}
	}
}

func TestErrorTextCleansAndCaps(t *testing.T) {
	got := ErrorText(errors.New("bad\x1b[31m thing\r\n" + strings.Repeat("x", 2000)))
	if strings.ContainsAny(got, "\x1b\r\n") {
		t.Errorf("control characters kept: %q", got)
	}
	if n := len([]rune(got)); n != maxErrorRunes+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("not capped: %d runes", n)
	}
	if ErrorText(nil) != "" {
		t.Error("nil error must give empty text")
	}
}

// The ID comes from what happened, not when: a retried send or activity reports the same
// event with the same ID, and a different run or outcome is a different event.
func TestEventIDIsDerivedFromTheEvent(t *testing.T) {
	base := Event{Type: RotationFailed, SecretID: "prod/db", WorkflowID: "rotate/prod/db", RunID: "run-1", Step: "test", Outcome: "failed", Time: time.Now()}
	later := base
	later.Time = base.Time.Add(time.Minute)
	later.ErrorMessage = "different text on the retry"
	if a, b := base.Seal().ID, later.Seal().ID; a != b || !strings.HasPrefix(a, "evt_") {
		t.Fatalf("same event, different IDs: %s %s", a, b)
	}
	for name, change := range map[string]func(*Event){
		"run":     func(e *Event) { e.RunID = "run-2" },
		"outcome": func(e *Event) { e.Outcome = "rolled_back" },
		"type":    func(e *Event) { e.Type = RevokeOutstanding },
		"step":    func(e *Event) { e.Step = "promote" },
		"secret":  func(e *Event) { e.SecretID = "prod/db2" },
		"shifted": func(e *Event) { e.WorkflowID, e.RunID = "rotate/prod/dbr", "un-1" },
	} {
		other := base
		change(&other)
		if other.Seal().ID == base.Seal().ID {
			t.Errorf("changing the %s kept the ID", name)
		}
	}
	if Sample(time.Now()).ID == Sample(time.Now()).ID {
		t.Error("two test samples must have different IDs, or a deduplicating receiver hides the second")
	}
}

func TestTypesAreTheInventoryNames(t *testing.T) {
	types := Types()
	if len(types) != len(inventory.NotifyEvents) || types[0] != RotationFailed || types[len(types)-1] != IncidentFinished {
		t.Fatalf("Types() = %v", types)
	}
}

// An incident's summary shows in chat with its counts, and the operator's words reach
// no receiver with escape sequences or unbounded.
func TestIncidentSummary(t *testing.T) {
	e := Event{Type: IncidentContained, IncidentID: "inc-1", WorkflowID: "incident/inc-1", Incident: &Incident{
		Mode: "contain", Selector: "prefix=prod/", Reason: "leak\x1b[31m <!channel>\n" + strings.Repeat("x", 1000), Operator: "oncall",
		Secrets: 3, Contained: 2, NotContained: 1, Failed: 1, NeedsHuman: 1, ContainedSeconds: 1.25,
	}}.Seal()
	if r := e.Incident.Reason; strings.ContainsAny(r, "\x1b\n") || len([]rune(r)) > maxWordsRunes+1 {
		t.Errorf("reason not cleaned and capped: %q", r)
	}
	body, err := Body(inventory.NotifyFormatSlack, e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Incident contained", "prefix=prod/ (3 secrets)", "2 contained, 1 not contained, 0 rotated, 1 failed, 1 need a human", "1.25s", "lt;!channel"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("slack body lacks %q: %s", want, body)
		}
	}
	if strings.Contains(string(body), "<!channel>") {
		t.Error("the reason can mention @channel in Slack")
	}
	// The incident's events are told apart by type and incident, not by run or time.
	other := e
	other.Type = IncidentFinished
	if other.DerivedID() == e.DerivedID() {
		t.Error("incident_contained and incident_finished share an ID")
	}
}

// An overdue event's ID depends on the secret and its current version, never on the time,
// and differs from every rotation event's.
func TestOverdueEventID(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	o := Overdue{Version: "rotate/a/b/r1", VersionNumber: 3, AgeSeconds: 100, MaxAgeSeconds: 50, MaxAgeFrom: "max_age", Reason: "age \x1b[31m2h is over\x07 the maximum 1h"}
	e := OverdueEvent(at, "a/b", "postgres", "payments", []string{"prod"}, o)
	if e.Type != SecretOverdue || e.SecretID != "a/b" || e.Owner != "payments" || e.Overdue.Version != o.Version || e.Overdue.Reason != "age 2h is over the maximum 1h" || !strings.HasPrefix(e.ID, "evt_") {
		t.Fatalf("event %+v %+v", e, e.Overdue)
	}
	if later := OverdueEvent(at.Add(time.Hour), "a/b", "postgres", "payments", nil, Overdue{Version: o.Version}); later.ID != e.ID {
		t.Errorf("a later sweep finding the same version overdue must send the same ID: %s != %s", later.ID, e.ID)
	}
	ids := map[string]string{e.ID: "first"}
	for name, other := range map[string]Event{
		"new version":  OverdueEvent(at, "a/b", "postgres", "", nil, Overdue{Version: "rotate/a/b/r2"}),
		"no version":   OverdueEvent(at, "a/b", "postgres", "", nil, Overdue{}),
		"other secret": OverdueEvent(at, "a/c", "postgres", "", nil, Overdue{Version: o.Version}),
		"rotation":     Event{Type: RotationFailed, SecretID: "a/b", RunID: "r1"}.Seal(),
	} {
		if prev, dup := ids[other.ID]; dup {
			t.Errorf("%s has the ID of %s", name, prev)
		}
		ids[other.ID] = name
	}
	body, err := Body(inventory.NotifyFormatSlack, e)
	if err != nil || !strings.Contains(string(body), "*Overdue:* age 2h is over the maximum 1h") {
		t.Errorf("the Slack body must say why: %s %v", body, err)
	}
}
