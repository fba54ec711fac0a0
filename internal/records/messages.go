package records

import (
	"fmt"
	"strings"
	"time"
)

// Message is a domain error of keys, secrets or certificates whose text is exactly what the
// client is told (Key Vault's wording where it is known) and which wraps the domain's
// sentinel (Kind), so the api layer maps it with errors.Is and renders Error() unchanged.
type Message struct {
	Kind error
	Text string
}

func (e *Message) Error() string { return e.Text }
func (e *Message) Unwrap() error { return e.Kind }

// Errorf returns a *Message of kind with a formatted text. Callers never pass key material
// or a secret value among args.
func Errorf(kind error, format string, args ...any) error {
	return &Message{Kind: kind, Text: fmt.Sprintf(format, args...)}
}

// Lifecycle words the lifecycle's refusals for one kind of object as Key Vault does: Noun is
// how its messages name the kind ("key", "secret", "certificate"); the errors wrap NotFound
// or Conflict (or Protected), the kind's sentinels. Sources (docs/COMPAT.md): responses recorded in the
// Azure SDKs' tests (azure-sdk-for-js keyvault-keys and -secrets recordings, 2021–2022;
// azure-sdk-for-cpp keyvault keys tests).
type Lifecycle struct {
	Noun               string
	NotFound, Conflict error
	// Protected is the kind's sentinel for a purge refused by purge protection.
	Protected error
}

// Missing is the refusal for a name (and version) with no live object: a get, update or
// operation on a name that never existed or is soft-deleted, and a recover of a name that
// is not soft-deleted.
func (l Lifecycle) Missing(name, version string) error {
	id := name
	if version != "" {
		id += "/" + version
	}
	return Errorf(l.NotFound, "A %s with (name/id) %s was not found in this key vault. If you recently deleted this %s you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", l.Noun, id, l.Noun)
}

// NotDeleted is the refusal of a get (and purge) of a deleted object for a name that is not
// soft-deleted, whether or not a live object has it.
func (l Lifecycle) NotDeleted(name string) error {
	return Errorf(l.NotFound, "Deleted %s not found: %s", title(l.Noun), name)
}

// Deleted is the refusal to reuse the name of a soft-deleted object.
func (l Lifecycle) Deleted(name string) error {
	return Errorf(l.Conflict, "%s %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the %s can only be recovered or purged.", title(l.Noun), name, l.Noun)
}

// PurgeProtected is the refusal of a user purge of the deleted object name before its purge
// date (unix seconds) while the vault has purge protection; the scheduler purges it then.
func (l Lifecycle) PurgeProtected(name string, purgeDate int64) error {
	return Errorf(l.Protected, "Operation \"purge\" is not allowed because purge protection is enabled for this vault. %s %s will be purged automatically at %s, at the end of its retention period.",
		title(l.Noun), name, time.Unix(purgeDate, 0).UTC().Format(time.RFC3339))
}

// PurgeHeld is the refusal of a user purge of a purge-protected object whose purge date has
// passed while purges are held because the server's clock jumped forward (PurgeClock).
func (l Lifecycle) PurgeHeld(name string) error {
	return Errorf(l.Protected, "Operation \"purge\" is not allowed now: purge protection is enabled for this vault, and purges are held because the server's clock moved forward more than the allowed jump. %s %s stays recoverable; an operator must check the clock and confirm it (`coffer operator confirm-clock`) before it can be purged.",
		title(l.Noun), name)
}

// title upper-cases the first letter of an ASCII noun.
func title(noun string) string {
	if noun == "" {
		return noun
	}
	return strings.ToUpper(noun[:1]) + noun[1:]
}
