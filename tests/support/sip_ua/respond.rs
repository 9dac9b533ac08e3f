//! Answering requests the server sends (NOTIFY, OPTIONS pings): building the response, sending it
//! back to where the request came from, and the usual reason phrases.

use super::super::random_hex;
use super::{addr_param, ReceivedMessage, SipUa};

impl SipUa {
    /// Builds a response to a request the server sent (Via/From/To/Call-ID/CSeq copied, a To tag
    /// added for non-100 responses).
    pub fn build_response(
        req: &ReceivedMessage,
        code: u16,
        reason: &str,
        extra_headers: &[(String, String)],
        body: &[u8],
    ) -> String {
        let mut m = format!("SIP/2.0 {code} {reason}\r\n");
        for via in req.headers("via") {
            m.push_str(&format!("Via: {via}\r\n"));
        }
        if let Some(f) = req.header("from") {
            m.push_str(&format!("From: {f}\r\n"));
        }
        if let Some(t) = req.header("to") {
            if code > 100 && addr_param(t, "tag").is_none() {
                m.push_str(&format!("To: {t};tag={}\r\n", random_hex(8)));
            } else {
                m.push_str(&format!("To: {t}\r\n"));
            }
        }
        if let Some(c) = req.call_id() {
            m.push_str(&format!("Call-ID: {c}\r\n"));
        }
        if let Some(c) = req.header("cseq") {
            m.push_str(&format!("CSeq: {c}\r\n"));
        }
        m.push_str("User-Agent: deskline-test-ua/1.0\r\n");
        for (n, v) in extra_headers {
            m.push_str(&format!("{n}: {v}\r\n"));
        }
        m.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        m.push_str(&String::from_utf8_lossy(body));
        m
    }

    /// Answers a server-sent request with `code` (standard reason phrase).
    pub async fn respond(&mut self, req: &ReceivedMessage, code: u16, extra_headers: &[(String, String)]) {
        let text = Self::build_response(req, code, reason_phrase(code), extra_headers, b"");
        self.send_raw_to(text.as_bytes(), req.source).await;
    }
}

/// The usual reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        489 => "Bad Event",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
