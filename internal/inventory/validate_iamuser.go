package inventory

import "fmt"

// validateIAMUserOverlap refuses two awsiam secrets that rotate the same IAM user. A user
// has two key slots and Keyturn finds what an interrupted rotation left by the keys the
// store does not know: two secrets on one user would fill each other's slots and remove
// each other's keys. Reported at the later secret, naming the earlier one's place. skip
// says which secrets to leave out (duplicate IDs, reported already).
func (inv *Inventory) validateIAMUserOverlap(r *report, skip func(i int) bool) {
	first := map[string]int{}
	for i := range inv.Secrets {
		s := &inv.Secrets[i]
		if s.Kind != KindAWSIAM || s.AWSIAM == nil || s.AWSIAM.User == "" || skip(i) {
			continue
		}
		prev, ok := first[s.AWSIAM.User]
		if !ok {
			first[s.AWSIAM.User] = i
			continue
		}
		r.Add(s.line("awsiam.user"), fmt.Sprintf("secrets[%d].awsiam.user", i),
			"IAM user %s is also rotated by secrets[%d] (%s:%d); one user's two key slots cannot serve two secrets, which would remove each other's keys: give each secret its own IAM user",
			quoteValue(s.AWSIAM.User), prev, inv.Path, inv.Secrets[prev].line("awsiam.user"))
	}
}
