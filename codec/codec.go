// Package codec encrypts every payload Keyturn sends to Temporal (workflow inputs and
// results, activity inputs and results, signals, queries, failure details and messages)
// with AES-256-GCM, with the key's ID in the payload metadata. It is the second wall: the
// first is that no secret material is ever put in a payload at all. With it, even the
// references and handles (role names, version tokens) are unreadable to anyone with access
// to the Temporal cluster's database but not to the key.
//
// The Web UI decodes payloads through the codec server (Handler), which `keyturn dev`
// runs next to the UI.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Payload metadata keys and the encoding marker of an encrypted payload.
const (
	MetadataEncoding  = converter.MetadataEncoding
	MetadataKeyID     = "encryption-key-id"
	EncodingEncrypted = "binary/encrypted"
)

// KeySize is the length of an AES-256 key.
const KeySize = 32

// ErrUnknownKey means a payload was encrypted with a key this process does not hold.
var ErrUnknownKey = errors.New("payload encrypted with a key this process does not have")

// Codec encrypts with one current key and decrypts with any key it holds, so the key can
// be rotated: add the new key, make it current, keep the old one until no history needs it.
type Codec struct {
	current string
	aeads   map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New builds a codec that encrypts with the first key and decrypts with all of them.
func New(keys ...[]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: no key")
	}
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("codec: key %d has %d bytes, want %d", i+1, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("codec: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: %w", err)
		}
		id := KeyID(k)
		c.aeads[id] = aead
		if i == 0 {
			c.current = id
		}
	}
	return c, nil
}

// KeyID names a key without revealing it: the first 8 bytes of its SHA-256, in hex.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// Encode encrypts each payload whole (metadata and data), so not even the encoding of the
// original payload shows.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	aead := c.aeads[c.current]
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:    []byte(c.current),
			},
			Data: aead.Seal(nonce, nonce, plain, []byte(c.current)),
		}
	}
	return out, nil
}

// Decode decrypts encrypted payloads and passes others through unchanged (histories
// written before encryption was turned on stay readable).
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("codec: %w: the payload needs key %s, this process has %s; pass the key file whose ID is %s (--codec-key-file, KEYTURN_CODEC_KEY_FILE, or the state directory's codec.key with --home)",
				ErrUnknownKey, quoteID(id), strings.Join(c.ids(), ", "), quoteID(id))
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, errors.New("codec: encrypted payload too short")
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("codec: decrypt with key %s: %w", id, err)
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return nil, fmt.Errorf("codec: unmarshal payload: %w", err)
		}
		out[i] = &decoded
	}
	return out, nil
}

// ids lists the IDs of the keys c holds, current first.
func (c *Codec) ids() []string {
	ids := []string{c.current}
	for id := range c.aeads {
		if id != c.current {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids[1:])
	return ids
}

// quoteID shows a key ID read from a payload, which anyone could have written: quoted,
// and cut short if it is not the 16 hex digits an ID is.
func quoteID(id string) string {
	if len(id) > 16 {
		id = id[:16] + "..."
	}
	return strconv.Quote(id)
}

// Keyless is the codec of a process that has no key: payloads it sends are not
// encrypted, and an encrypted payload it receives fails with an error that names the key
// it needs and how to pass it (instead of the SDK's "payload encoding is not supported").
func Keyless() converter.PayloadCodec { return keyless{} }

type keyless struct{}

func (keyless) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return payloads, nil
}

func (keyless) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	for _, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) == EncodingEncrypted {
			id := string(p.GetMetadata()[MetadataKeyID])
			return nil, fmt.Errorf("codec: %w: the payload is encrypted with key %s and this command has no key; pass that key file with --codec-key-file (or KEYTURN_CODEC_KEY_FILE), or point --home (KEYTURN_HOME) at the state directory of the keyturn dev that wrote it",
				ErrUnknownKey, quoteID(id))
		}
	}
	return payloads, nil
}

// DataConverter is the default converter with payloads encrypted by c.
func DataConverter(c converter.PayloadCodec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failure messages and stack traces into encoded attributes, so
// they are encrypted like payloads instead of stored in the clear.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}
