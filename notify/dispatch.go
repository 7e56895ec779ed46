package notify

import "context"

// Dispatch seals e (derives its ID from what happened) and delivers it through s to every
// route of r that takes it, at once. It returns one Delivery per route, none when no
// route takes the event; a failed delivery is reported, never returned as an error, so a
// dead webhook cannot fail what reports through it.
func Dispatch(ctx context.Context, r *Router, s *Sender, e Event) []Delivery {
	e = e.Seal()
	routes := r.Routes(e)
	if len(routes) == 0 {
		return nil
	}
	return s.SendAll(ctx, routes, e)
}
