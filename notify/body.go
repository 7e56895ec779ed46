package notify

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/internal/inventory"
)

// Body renders the event in a route's format: the event itself as JSON for
// inventory.NotifyFormatJSON, a Slack message for inventory.NotifyFormatSlack.
func Body(format string, e Event) ([]byte, error) {
	switch format {
	case inventory.NotifyFormatJSON, "":
		return json.Marshal(e)
	case inventory.NotifyFormatSlack:
		return json.Marshal(slackMessage(e))
	}
	return nil, fmt.Errorf("unknown notification format %q", format)
}

// titles say what happened in a few words, for chat.
var titles = map[Type]string{
	RotationFailed:     ":rotating_light: Rotation failed",
	RotationRolledBack: ":leftwards_arrow_with_hook: Rotation rolled back",
	RevokeOutstanding:  ":warning: Old credential not revoked yet",
	RevokeHeld:         ":no_entry: Revoke held: the old credential is still in use",
	RevokeReleased:     ":white_check_mark: Held revoke proceeds",
	SecretOverdue:      ":hourglass: Secret overdue for rotation",
	IncidentStarted:    ":rotating_light: Incident started",
	IncidentContained:  ":shield: Incident contained",
	IncidentFinished:   ":white_check_mark: Incident finished",
	Test:               ":bell: Keyturn test notification",
}

// slack is the body Slack's incoming webhooks take: text for notifications and clients
// without blocks, blocks for the message itself.
type slack struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func slackMessage(e Event) slack {
	title, ok := titles[e.Type]
	if !ok {
		title = "Keyturn event " + string(e.Type)
	}
	subject := string(e.SecretID)
	if subject == "" {
		subject = "incident " + e.IncidentID
	}
	text := fmt.Sprintf("%s: %s", title, mrkdwn(subject))

	var detail []string
	add := func(label, v string) {
		if v != "" {
			detail = append(detail, fmt.Sprintf("*%s:* %s", label, mrkdwn(v)))
		}
	}
	add("Secret", string(e.SecretID))
	add("Kind", e.Kind)
	add("Tags", strings.Join(e.Tags, ", "))
	add("Owner", e.Owner)
	if o := e.Overdue; o != nil {
		add("Overdue", o.Reason)
	}
	add("Step", e.Step)
	add("Outcome", e.Outcome)
	add("Incident", e.IncidentID)
	if e.RevokeGate != nil {
		for _, l := range e.RevokeGate.lines() {
			add(l[0], l[1])
		}
	}
	if e.Incident != nil {
		for _, l := range e.Incident.lines() {
			add(l[0], l[1])
		}
	}
	add("Error", strings.TrimSpace(e.ErrorClass+" "+e.ErrorMessage))

	ctx := fmt.Sprintf("event %s · %s", mrkdwn(e.ID), e.Time.UTC().Format("2006-01-02 15:04:05Z"))
	if e.WorkflowID != "" {
		ctx += " · workflow " + mrkdwn(e.WorkflowID)
	}
	blocks := []slackBlock{{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "*" + title + "*"}}}
	if len(detail) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: strings.Join(detail, "\n")}})
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: ctx}}})
	return slack{Text: text, Blocks: blocks}
}

// mrkdwn escapes the three characters Slack treats as control characters, so a value
// (an error message, a tag) cannot become a link or an @channel mention.
func mrkdwn(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
