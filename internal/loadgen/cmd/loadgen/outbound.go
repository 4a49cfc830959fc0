package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
	"github.com/mailstack/terraform-provider-mailstack/internal/loadgen"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/postfixtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
	"github.com/mailstack/terraform-provider-mailstack/runtime/control"
)

// Outbound measurement: 1 KiB messages from 32 submission clients,
// relayed to one destination (Postfix on loopback, discarding what it
// accepts, without process churn or inflow pauses: postfixtest.Options.
// Discard), with TLS on both hops. Once through mailstack (submission
// with AUTH, fsynced queue, relay over STARTTLS with the destination's
// certificate pinned) and once through Postfix as the relay (smtpd with
// STARTTLS from mynetworks, relayhost with smtp_tls_security_level =
// encrypt, TLS connection reuse and Debian's TLS session cache),
// alternately, to the same destination.
// A run ends when the destination has logged every message as delivered.
// Both relays share the destination and the machine: its CPU per message
// is printed too, for what bounds the end-to-end rate.
const (
	outboundMessages = 3000
	outboundClients  = 32
	outboundRounds   = 2
)

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func benchOutbound(ctx context.Context, o options, work string, ks *testKeystore) error {
	if err := postfixtest.Available(); err != nil {
		fmt.Printf("\n### Outbound relaying: skipped (%v)\n", err)
		return nil
	}
	destAddr, err := freeAddr()
	if err != nil {
		return err
	}
	dest, err := postfixtest.Run(postfixtest.Options{Addr: destAddr, Hostname: "mx.dest.test", Domain: "dest.test", Discard: true})
	if err != nil {
		return err
	}
	defer func() { dest.Stop(); os.RemoveAll(dest.Dir) }()
	relayAddr, err := freeAddr()
	if err != nil {
		return err
	}
	relay, err := postfixtest.Run(postfixtest.Options{Addr: relayAddr, Hostname: "relay.ours.test", RelayHost: destAddr})
	if err != nil {
		return err
	}
	defer func() { relay.Stop(); os.RemoveAll(relay.Dir) }()

	rt, err := startRuntime(o.bin, filepath.Join(work, "outbound-state"))
	if err != nil {
		return err
	}
	defer rt.stop()
	if _, err := rt.client.SetServer(ctx, config.Server{
		Hostname: hostname, Domains: []string{"example.com"}, DNSResolvers: []string{"127.0.0.1:9"},
		Relay:       &config.Relay{Address: destAddr, Mode: config.TLSStartTLS},
		TLSPolicies: []config.TLSPolicy{{Domain: "127.0.0.1", FingerprintsSHA256: []string{keystore.Fingerprint(dest.Cert.TLS.Leaf)}}},
	}); err != nil {
		return err
	}
	const sender = "sender@example.com"
	if _, err := rt.client.PutUser(ctx, sender, control.UserRequest{Password: userPassword}); err != nil {
		return err
	}
	subAddr, err := freeAddr()
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(subAddr)
	var p int
	fmt.Sscan(port, &p)
	if _, err := rt.client.PutListener(ctx, "submission", config.Listener{Protocol: config.ProtocolSubmission, Address: host, Port: p,
		TLS: config.TLS{Mode: config.TLSStartTLS, KeystorePath: ks.path, KeystorePassword: keystorePassword}}); err != nil {
		return err
	}

	fmt.Printf("\n### Outbound relaying: %d × 1 KiB from %d clients to one Postfix MX (discard), TLS on both hops\n\n", outboundMessages, outboundClients)
	fmt.Printf("load average before: %s\n\n", loadAverage())
	fmt.Println("| round | relay | accepted in | delivered in | msgs/s end to end | relay CPU µs/msg | destination CPU µs/msg |")
	fmt.Println("|---:|---|---:|---:|---:|---:|---:|")
	insecure := &tls.Config{InsecureSkipVerify: true}
	var sums [2]float64
	for round := 1; round <= outboundRounds; round++ {
		for i, sys := range []string{"postfix", "mailstack"} {
			load := loadgen.SMTPLoad{Size: 1 << 10, Clients: outboundClients, Recipients: []string{"user@dest.test"}, Messages: outboundMessages}
			var cpu func(int64) float64
			if sys == "postfix" {
				load.Addr, load.TLS = relayAddr, insecure
				before := postfixCPU(relay.Dir)
				cpu = func(n int64) float64 { return float64((postfixCPU(relay.Dir) - before).Microseconds()) / float64(n) }
			} else {
				load.Addr, load.TLS = subAddr, ks.client
				load.From, load.Username, load.Password = sender, sender, userPassword
				m := meter(rt.pid())
				cpu = func(n int64) float64 { s, _ := m.perOp(n); return s }
			}
			start := time.Now()
			sent := dest.NewCounter("status=sent")
			destBefore := postfixCPU(dest.Dir)
			r, err := loadgen.RunSMTP(ctx, load)
			if err != nil {
				return fmt.Errorf("%s: %w", sys, err)
			}
			accepted := time.Since(start)
			deadline := time.Now().Add(5 * time.Minute)
			for sent.Count() < int(r.Ops) {
				if time.Now().After(deadline) {
					return fmt.Errorf("%s: the destination did not get %d messages within 5 minutes", sys, r.Ops)
				}
				time.Sleep(50 * time.Millisecond)
			}
			total := time.Since(start)
			rate := float64(r.Ops) / total.Seconds()
			sums[i] += rate
			destCPU := float64((postfixCPU(dest.Dir) - destBefore).Microseconds()) / float64(r.Ops)
			fmt.Printf("| %d | %s | %.2fs | %.2fs | %.0f | %.0f | %.0f |\n", round, sys, accepted.Seconds(), total.Seconds(), rate, cpu(r.Ops), destCPU)
		}
	}
	fmt.Printf("\nmean: Postfix %.0f msgs/s, mailstack %.0f msgs/s, ratio %.2f×\n", sums[0]/outboundRounds, sums[1]/outboundRounds, sums[1]/sums[0])
	fmt.Printf("load average after: %s\n", loadAverage())
	return nil
}

// postfixCPU is the CPU time of the Postfix instance in dir: its master
// and every daemon it started.
func postfixCPU(dir string) time.Duration {
	b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	c, _ := loadgen.TreeCPU(pid)
	return c
}
