package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// Client talks to one runtime's control socket.
type Client struct {
	socket string
	http   *http.Client
}

// DialFunc connects to a runtime's control socket: directly on the local
// host, through the SSH connection on a remote one (internal/host).
type DialFunc func(ctx context.Context) (net.Conn, error)

// NewClient returns a client that reaches a runtime's control socket with
// dial; socket names it in errors. It does not connect until the first
// call. runtime/statedir's Dir.Client makes the one for a state directory.
func NewClient(socket string, dial DialFunc) *Client {
	return &Client{
		socket: socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			DisableKeepAlives: true,
		}},
	}
}

// Status returns the runtime's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Server returns the server settings.
func (c *Client) Server(ctx context.Context) (config.Server, error) {
	var s config.Server
	return s, c.do(ctx, http.MethodGet, "/v1/server", nil, &s)
}

// SetServer replaces the server settings.
func (c *Client) SetServer(ctx context.Context, s config.Server) (config.Server, error) {
	var out config.Server
	return out, c.do(ctx, http.MethodPut, "/v1/server", s, &out)
}

// Listener returns a listener; IsNotFound(err) when it does not exist.
func (c *Client) Listener(ctx context.Context, id string) (ListenerObject, error) {
	var obj ListenerObject
	return obj, c.do(ctx, http.MethodGet, "/v1/listeners/"+url.PathEscape(id), nil, &obj)
}

// PutListener creates or changes a listener; it returns when it is live.
func (c *Client) PutListener(ctx context.Context, id string, l config.Listener) (ListenerObject, error) {
	var obj ListenerObject
	return obj, c.do(ctx, http.MethodPut, "/v1/listeners/"+url.PathEscape(id), l, &obj)
}

// DeleteListener stops a listener and frees its port.
func (c *Client) DeleteListener(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/listeners/"+url.PathEscape(id), nil, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://runtime"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("runtime control socket %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		apiErr := &Error{Code: resp.StatusCode}
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(apiErr); err != nil || apiErr.Message == "" {
			apiErr.Message = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return apiErr
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding %s %s answer: %w", method, path, err)
	}
	return nil
}

// User returns a user; IsNotFound(err) when there is none.
func (c *Client) User(ctx context.Context, address string) (UserObject, error) {
	var u UserObject
	return u, c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(address), nil, &u)
}

// PutUser creates a user or changes their password and quota.
func (c *Client) PutUser(ctx context.Context, address string, req UserRequest) (UserObject, error) {
	var u UserObject
	return u, c.do(ctx, http.MethodPut, "/v1/users/"+url.PathEscape(address), req, &u)
}

// DeleteUser removes a user.
func (c *Client) DeleteUser(ctx context.Context, address string) error {
	return c.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(address), nil, nil)
}

// CheckPassword reports whether password is the user's; IsNotFound(err)
// when there is no such user.
func (c *Client) CheckPassword(ctx context.Context, address, password string) (bool, error) {
	var res PasswordCheckResult
	err := c.do(ctx, http.MethodPost, "/v1/users/"+url.PathEscape(address)+"/password-check", PasswordCheck{Password: password}, &res)
	return res.Match, err
}
