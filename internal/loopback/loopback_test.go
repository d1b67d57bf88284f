package loopback

import (
	"net"
	"strconv"
	"testing"
)

func TestAddrs(t *testing.T) {
	addrs, err := Addrs(6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	hi := ephemeralLow()
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("address %s handed out twice", a)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port < lowest || port >= hi {
			t.Errorf("port %d outside %d..%d", port, lowest, hi-1)
		}
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("address %s not bindable after Addrs returned: %v", a, err)
			continue
		}
		l.Close()
	}
}

// One address per call, as the node tests draw them: never the same port
// twice in a process (a few thousand draws from ~17 000 ports would repeat
// one with near certainty if draws were independent).
func TestAddrsNeverRepeat(t *testing.T) {
	seen := map[string]bool{}
	for range 3000 {
		a, err := Addrs(1)
		if err != nil {
			t.Fatal(err)
		}
		if seen[a[0]] {
			t.Fatalf("address %s handed out twice", a[0])
		}
		seen[a[0]] = true
	}
}
