package activities

// Urgency is told when urgent work starts, and done is called when it ends; the worker's
// background work (its secret sweep) stands aside meanwhile. The worker's is a
// *priority.Gate.
type Urgency interface {
	Urgent() (done func())
}

// WithUrgency makes every containment batch hold u while it runs.
func WithUrgency(u Urgency) Option {
	return func(a *Activities) { a.urgent = u }
}
