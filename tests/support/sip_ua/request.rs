//! Requests from a [`SipUa`]: building one (Via, From, To, Call-ID, CSeq), waiting for the final
//! response of its transaction, and answering a 401/407 digest challenge.

use tokio::time::Instant;

use super::super::digest::{self, Algorithm};
use super::super::random_hex;
use super::{ReceivedMessage, SipUa};

impl SipUa {
    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/{} {};branch={branch};rport", self.transport.via_name(), self.local_hostport())
    }

    /// Builds a request with our Via/From/To/Call-ID/CSeq (CSeq incremented) and the given
    /// headers. Returns (text, branch).
    pub fn build_request(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (String, String) {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", random_hex(16));
        let mut m = format!("{method} {uri} SIP/2.0\r\n");
        m.push_str(&format!("Via: {}\r\n", self.via(&branch)));
        m.push_str("Max-Forwards: 70\r\n");
        m.push_str(&format!("From: <{from}>;tag={}\r\n", self.from_tag));
        m.push_str(&format!("To: <{to}>\r\n"));
        m.push_str(&format!("Call-ID: {}\r\n", self.call_id));
        m.push_str(&format!("CSeq: {} {method}\r\n", self.cseq));
        m.push_str(&format!("User-Agent: {}\r\n", self.user_agent));
        for (n, v) in headers {
            m.push_str(&format!("{n}: {v}\r\n"));
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        m.push_str(&String::from_utf8_lossy(body));
        (m, branch)
    }

    /// Sends a request and waits for its final response (1xx skipped; requests received meanwhile
    /// are queued). None when nothing came within `self.timeout`.
    pub async fn try_request(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Option<ReceivedMessage> {
        let (text, branch) = self.build_request(method, uri, from, to, headers, body);
        self.send_raw(text.as_bytes()).await;
        self.wait_response(&branch, method).await
    }

    /// Waits for the final response of the transaction `branch`.
    pub async fn wait_response(&mut self, branch: &str, method: &str) -> Option<ReceivedMessage> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.recv_wire(left).await?;
            if m.is_request() {
                self.queue.push_back(m);
                continue;
            }
            let ours = m.via_branch().as_deref() == Some(branch)
                && m.cseq().map(|(_, meth)| meth.eq_ignore_ascii_case(method)).unwrap_or(false);
            if !ours {
                self.stray_responses.push(m);
                continue;
            }
            if m.status().is_some_and(|s| s < 200) {
                continue;
            }
            return Some(m);
        }
    }

    /// Like [`try_request`](Self::try_request) but panics without a final response.
    pub async fn request(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> ReceivedMessage {
        match self.try_request(method, uri, from, to, headers, body).await {
            Some(m) => m,
            None => panic!(
                "no final response to {method} over {} within {:?}; sent:\n{}",
                self.transport,
                self.timeout,
                self.sent.last().map(String::as_str).unwrap_or("")
            ),
        }
    }

    /// Sends a request; on 401/407 answers the challenge of `alg` once with `(user, pass)`.
    /// Returns the final response of the last attempt. With `reuse_nonce`, the first attempt
    /// already carries an Authorization from the last challenge (nc+1).
    #[allow(clippy::too_many_arguments)]
    pub async fn request_with_auth(
        &mut self,
        method: &str,
        uri: &str,
        from: &str,
        to: &str,
        headers: &[(String, String)],
        body: &[u8],
        auth: Option<(&str, &str)>,
        alg: Algorithm,
    ) -> ReceivedMessage {
        let mut first = headers.to_vec();
        if let (true, Some((user, pass)), Some((ch, nc))) = (self.reuse_nonce, auth, self.last_challenge.clone()) {
            if ch.algorithm() == Some(alg) {
                let nc = nc + 1;
                let value = digest::authorization(&ch, user, pass, method, uri, nc, &digest::new_cnonce());
                self.last_challenge = Some((ch, nc));
                first.push(("Authorization".into(), value));
            }
        }
        let resp = self.request(method, uri, from, to, &first, body).await;
        let Some((user, pass)) = auth else { return resp };
        let (challenge_header, auth_header) = match resp.status() {
            Some(401) => ("WWW-Authenticate", "Authorization"),
            Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => return resp,
        };
        let Some(ch) = digest::pick_challenge(&resp.headers(challenge_header), alg) else {
            panic!("the {} to {method} offers no {alg} challenge:\n{}", resp.status().unwrap(), resp.raw);
        };
        let value = digest::authorization(&ch, user, pass, method, uri, 1, &digest::new_cnonce());
        self.last_challenge = Some((ch, 1));
        let mut second = headers.to_vec();
        second.push((auth_header.into(), value));
        self.request(method, uri, from, to, &second, body).await
    }
}
