// Package schedules owns one thing: turning the inventory's rotation schedules into Temporal
// Schedules and keeping them in step with it.
//
// Every secret with a `schedule` gets one schedule, keyturn/<secret-id>, whose action
// starts the ScheduledRotate workflow, which in turn starts the rotation under
// rotate/<secret-id>. Every certificate secret also gets keyturn-renew/<secret-id>, an
// hourly renewal check that rotates only once the current certificate is due. Plan
// compares that desired state with what Temporal holds and says, per schedule, what would
// change and why; Apply carries a plan out. Only schedules whose ID starts with keyturn/
// or keyturn-renew/ are ever read, changed or deleted, so other schedules in the
// namespace are safe.
//
// The cron spec is not sent to Temporal as text. It is parsed by the same parser that
// validated and previewed it (cronspec.Parse) and sent as Temporal's structured
// calendar, field by field, so Temporal fires on exactly the times the preview showed
// and no difference between two cron dialects can creep in. The spec as written is
// kept in the calendar's comment and in the action's memo, which also holds a hash of
// everything apply decides, so a plan can say "spec changed from X to Y".
//
// Pausing belongs to operators and the incident playbook: Apply keeps a schedule's
// paused state and note, and guards each update with Temporal's conflict token so a
// pause that lands while apply runs is never undone.
package schedules
