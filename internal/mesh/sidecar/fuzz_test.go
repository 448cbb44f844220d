package sidecar

import (
	"bytes"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// FuzzApply: any snapshot, valid or not, is applied or refused with an
// error; never a panic.
func FuzzApply(f *testing.F) {
	good, _ := proto.Marshal(&meshv1.Snapshot{Version: 1, Service: "client", Destinations: []*meshv1.Destination{{
		Service:   "echo",
		Endpoints: []*meshv1.Endpoint{{InstanceId: "e1", Address: "127.0.0.1:9", Version: "v1", Healthy: true}},
		Split:     []*meshv1.WeightedVersion{{Version: "v1", Weight: 1}},
		Routes:    []*meshv1.Route{{Headers: map[string]string{"x": "y"}, Version: "v1"}},
		Retries:   &meshv1.RetryPolicy{Attempts: 1, RetryOn: []string{"reset"}, PerTryTimeout: dur(time.Second)},
		Outlier:   &meshv1.OutlierDetection{ConsecutiveErrors: 1},
		Fault:     &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 1}, Delay: &meshv1.FaultDelay{Percent: 1, Duration: dur(time.Millisecond)}},
	}}, Inbound: &meshv1.Inbound{Allow: []*meshv1.AllowRule{{Caller: "a", Methods: []string{"/x/*"}}}}})
	f.Add(good)
	f.Add([]byte{})
	m := newMesh(f)
	p, err := New(Config{Service: "client", OutboundAddr: "127.0.0.1:0", Certs: m.staticCerts("client")})
	if err != nil {
		f.Fatal(err)
	}
	defer p.outLn.Close()
	var version uint64
	f.Fuzz(func(t *testing.T, data []byte) {
		var s meshv1.Snapshot
		if proto.Unmarshal(data, &s) != nil {
			return
		}
		version++
		s.Version = version
		p.Apply(&s)
	})
}

// FuzzOutboundConn feeds arbitrary frames to the outbound listener after
// the HTTP/2 preface: the proxy must answer or close, never panic or hang.
func FuzzOutboundConn(f *testing.F) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, hf := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "echo"}, {Name: ":path", Value: "/grpc.health.v1.Health/Check"},
		{Name: "content-type", Value: "application/grpc"}} {
		enc.WriteField(hf)
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
	fr.WriteWindowUpdate(0, 1000)
	fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\nHost: echo\r\n\r\n"))

	pr := newPair(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", pr.client.OutboundAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte(h2Preface))
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		// Once the peer has said all it will, the proxy answers what it
		// can and closes: it holds nothing open for a peer gone quiet.
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		var sink [4096]byte
		for {
			_, err := c.Read(sink[:])
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the connection is still open 20s after the peer's end of input %q", data)
			}
			if err != nil {
				break
			}
		}
	})
}
