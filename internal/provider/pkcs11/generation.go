package pkcs11

import (
	"context"
	"encoding/binary"
	"fmt"

	p11 "github.com/miekg/pkcs11"
)

// Store generation anchor: a data object of the token keeps the barrier's store generation
// outside the store (docs/FORMAT.md, "Store state"), so that a store restored from an older
// copy is refused at unseal. GenerationObject satisfies the barrier's GenerationAnchor seam
// by shape (this package does not import barrier).
//
// The object: CKO_DATA, CKA_TOKEN, CKA_PRIVATE (read only after login), CKA_LABEL the configured label, CKA_APPLICATION "coffer", CKA_VALUE
// "coffer-gen/1" ‖ generation (8 bytes, big endian).

// generationMagic starts the value of a generation object, version 1.
const generationMagic = "coffer-gen/1"

// GenerationObject reads and writes the token's data object labelled Label.
type GenerationObject struct {
	p     *Provider
	label string
}

// GenerationObject returns the anchor kept in the data object labelled label. Nothing is
// read from the token until it is used.
func (p *Provider) GenerationObject(label string) *GenerationObject {
	return &GenerationObject{p: p, label: label}
}

// Describe names the object for operators.
func (g *GenerationObject) Describe() string {
	return fmt.Sprintf("the PKCS#11 token's data object %q", g.label)
}

// LoadGeneration returns the generation in the object; found is false if there is none.
// Should a crash have left two objects (StoreGeneration creates the new one before it
// destroys the old), the higher generation counts.
func (g *GenerationObject) LoadGeneration(ctx context.Context) (gen uint64, found bool, err error) {
	err = g.with(ctx, func(s p11.SessionHandle, objs []p11.ObjectHandle) error {
		for _, obj := range objs {
			attrs, err := g.p.ctx.GetAttributeValue(s, obj, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
			if err != nil || len(attrs) != 1 {
				return hsmErr("read the store generation object", err)
			}
			v := attrs[0].Value
			if len(v) != len(generationMagic)+8 || string(v[:len(generationMagic)]) != generationMagic {
				return fmt.Errorf("pkcs11: the data object %q does not hold a store generation (%d bytes): it was changed outside Coffer, or the label is another application's", g.label, len(v))
			}
			gen, found = max(gen, binary.BigEndian.Uint64(v[len(generationMagic):])), true
		}
		return nil
	})
	return gen, found, err
}

// StoreGeneration replaces the object with one holding gen. Tokens need not let CKA_VALUE
// change (SoftHSM2 does not), so it creates the new object, then destroys the old ones.
func (g *GenerationObject) StoreGeneration(ctx context.Context, gen uint64) error {
	value := binary.BigEndian.AppendUint64([]byte(generationMagic), gen)
	return g.with(ctx, func(s p11.SessionHandle, old []p11.ObjectHandle) error {
		_, err := g.p.ctx.CreateObject(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_DATA),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_LABEL, g.label),
			p11.NewAttribute(p11.CKA_APPLICATION, "coffer"),
			p11.NewAttribute(p11.CKA_VALUE, value),
		})
		if err != nil {
			return hsmErr("create the store generation object", err)
		}
		for _, obj := range old {
			if err := g.p.ctx.DestroyObject(s, obj); err != nil {
				return hsmErr("destroy the previous store generation object", err)
			}
		}
		return nil
	})
}

// maxGenerationObjects bounds the objects with the label that one call handles.
const maxGenerationObjects = 16

// with runs op with a session and the objects labelled g.label.
func (g *GenerationObject) with(ctx context.Context, op func(s p11.SessionHandle, objs []p11.ObjectHandle) error) error {
	if g.label == "" {
		return fmt.Errorf("pkcs11: no label configured for the store generation object")
	}
	s, err := g.p.get(ctx)
	if err != nil {
		return err
	}
	objs, err := g.find(s)
	if err == nil {
		err = op(s, objs)
	}
	g.p.put(s, sessionBroken(err))
	return err
}

func (g *GenerationObject) find(s p11.SessionHandle) ([]p11.ObjectHandle, error) {
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_DATA),
		p11.NewAttribute(p11.CKA_LABEL, g.label),
	}
	if err := g.p.ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, hsmErr("find the store generation object", err)
	}
	objs, _, err := g.p.ctx.FindObjects(s, maxGenerationObjects)
	if ferr := g.p.ctx.FindObjectsFinal(s); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, hsmErr("find the store generation object", err)
	}
	return objs, nil
}
