use super::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sink on an ephemeral port; dropping the sender stops it.
async fn sink(sandbox: Sandbox) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_smtp(listener, sandbox, async move {
        let _ = rx.await;
    }));
    (port, stop)
}

fn transport(port: u16) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(port).build()
}

#[tokio::test]
async fn lettre_mail_is_kept_decoded() {
    let sandbox = Sandbox::default();
    let (port, _stop) = sink(sandbox.clone()).await;
    let subject = "Vérifiez votre identité — étape 1 of a rather long subject line that lettre has to fold";
    let text = "Bonjour Zoë,\n\nOuvrez ce lien : https://example.test/v/abc?x=1&y=2\nMerci — l'équipe\n";
    let html = "<p>Bonjour <b>Zoë</b>,</p><p><a href=\"https://example.test/v/abc?x=1&amp;y=2\">Vérifier</a></p>";
    let msg = lettre::Message::builder()
        .from("Hiring Team <hiring@example.test>".parse::<Mailbox>().unwrap())
        .to("Zoë Candidate <zoe@example.test>".parse::<Mailbox>().unwrap())
        .bcc("audit@example.test".parse::<Mailbox>().unwrap())
        .subject(subject)
        // lettre writes a Message-ID only when asked (None: generate one).
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(text.to_owned(), html.to_owned()))
        .unwrap();
    transport(port).send(msg).await.unwrap();

    let all = sandbox.mail();
    assert_eq!(all.len(), 1);
    let m = &all[0];
    assert_eq!(m.id, 1);
    assert_eq!(m.envelope_from, "hiring@example.test");
    assert_eq!(m.envelope_to, vec!["zoe@example.test".to_owned(), "audit@example.test".to_owned()]);
    assert_eq!(m.subject, subject);
    assert!(m.to.contains("Zoë Candidate") && m.to.contains("<zoe@example.test>"), "{}", m.to);
    assert!(m.from.contains("hiring@example.test"), "{}", m.from);
    assert!(m.message_id.starts_with('<') && m.message_id.ends_with('>'), "{:?}", m.headers);
    assert_eq!(m.text.trim_end(), text.trim_end());
    assert_eq!(m.html.as_deref().map(str::trim_end), Some(html));
    assert!(mime::header(&m.headers, "Subject").is_some_and(|s| s.contains("=?utf-8?")));
    assert!(mime::header(&m.headers, "Bcc").is_none());

    // The JSON filter is by envelope recipient, case-insensitively.
    let router = sandbox.router();
    let get = |uri: &str| {
        let req = axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            let r = router.oneshot(req).await.unwrap();
            let b = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
            String::from_utf8(b.to_vec()).unwrap()
        }
    };
    let found: Vec<MailMessage> =
        serde_json::from_str(&get("/_sandbox/mailbox/messages?to=AUDIT@example.test").await).unwrap();
    assert_eq!(found, all);
    let none: Vec<MailMessage> =
        serde_json::from_str(&get("/_sandbox/mailbox/messages?to=nobody@x.test").await).unwrap();
    assert!(none.is_empty());
    let page = get("/_sandbox/mailbox").await;
    assert!(page.contains("Vérifiez votre identité") && page.contains("y=2") && page.contains("&amp;y=2"));
    assert!(!page.contains("<b>Zoë</b>"), "the HTML part is not shown raw");
}

/// Talk SMTP by hand: send `lines`, return every reply line up to the last.
async fn converse(port: u16, script: &[&[u8]]) -> Vec<String> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut replies = vec![read_reply(&mut c).await];
    for line in script {
        c.write_all(line).await.unwrap();
        replies.push(read_reply(&mut c).await);
    }
    replies
}

/// One (possibly multi-line) reply.
async fn read_reply(c: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if c.read(&mut b).await.unwrap() == 0 {
            break;
        }
        got.push(b[0]);
        let text = String::from_utf8_lossy(&got);
        if let Some(last) = text.trim_end().lines().last()
            && text.ends_with("\r\n")
            && last.as_bytes().get(3) == Some(&b' ')
        {
            break;
        }
    }
    String::from_utf8(got).unwrap()
}

#[tokio::test]
async fn bounds_and_order_are_enforced() {
    let sandbox = Sandbox::default();
    let (port, _stop) = sink(sandbox.clone()).await;
    let long = format!("NOOP {}\r\n", "x".repeat(MAX_LINE));
    let r = converse(
        port,
        &[
            b"MAIL FROM:<a@x.test>\r\n",
            b"EHLO client\r\n",
            b"RCPT TO:<b@x.test>\r\n",
            b"DATA\r\n",
            long.as_bytes(),
            b"NOOP\r\n",
            b"FROB\r\n",
            b"STARTTLS\r\n",
            b"MAIL FROM:<a@x.test> SIZE=2000000\r\n",
            b"QUIT\r\n",
        ],
    )
    .await;
    assert!(r[0].starts_with("220 "), "{r:?}");
    assert!(r[1].starts_with("503 "), "MAIL before EHLO: {r:?}");
    assert!(r[2].starts_with("250-") && r[2].contains("SIZE 1048576") && !r[2].contains("STARTTLS"), "{r:?}");
    assert!(r[3].starts_with("503 "), "RCPT before MAIL: {r:?}");
    assert!(r[4].starts_with("503 "), "DATA before RCPT: {r:?}");
    assert!(r[5].starts_with("500 "), "line too long: {r:?}");
    assert!(r[6].starts_with("250 "), "still in step after it: {r:?}");
    assert!(r[7].starts_with("500 "), "{r:?}");
    assert!(r[8].starts_with("502 "), "{r:?}");
    assert!(r[9].starts_with("552 "), "{r:?}");
    assert!(r[10].starts_with("221 "), "{r:?}");
    assert!(sandbox.mail().is_empty());
}

#[tokio::test]
async fn data_is_dot_unstuffed_and_oversized_or_long_lines_refused() {
    let sandbox = Sandbox::default();
    let (port, _stop) = sink(sandbox.clone()).await;
    let mut big = String::from("Subject: big\r\n\r\n");
    let row = format!("{}\r\n", "y".repeat(998));
    while big.len() <= MAX_MESSAGE {
        big.push_str(&row);
    }
    big.push_str(".\r\n");
    let long_line = format!("Subject: long\r\n\r\n{}\r\n.\r\n", "z".repeat(MAX_LINE));
    let r = converse(
        port,
        &[
            b"HELO client\r\n",
            b"MAIL FROM:<>\r\n",
            b"RCPT TO:<c@x.test>\r\n",
            b"DATA\r\n",
            b"Subject: =?UTF-8?Q?caf=C3=A9_=3D_ok?=\r\n\r\n..leading dot\r\n.\r\n",
            b"MAIL FROM:<a@x.test> BODY=8BITMIME\r\n",
            b"RCPT TO:<c@x.test>\r\n",
            b"DATA\r\n",
            big.as_bytes(),
            b"MAIL FROM:<a@x.test>\r\n",
            b"RCPT TO:<c@x.test>\r\n",
            b"DATA\r\n",
            long_line.as_bytes(),
            b"RSET\r\n",
        ],
    )
    .await;
    assert!(r[4].starts_with("354 "), "{r:?}");
    assert!(r[5].starts_with("250 "), "{r:?}");
    assert!(r[6].starts_with("250 ") && r[8].starts_with("354 "), "{r:?}");
    assert!(r[9].starts_with("552 "), "too big: {r:?}");
    assert!(r[12].starts_with("354 "), "{r:?}");
    assert!(r[13].starts_with("500 "), "line too long in DATA: {r:?}");
    assert!(r[14].starts_with("250 "), "{r:?}");
    let all = sandbox.mail();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].subject, "café = ok");
    assert_eq!(all[0].text, ".leading dot\n");
    assert_eq!(all[0].envelope_from, "");
}

#[tokio::test]
async fn the_mailbox_keeps_the_newest() {
    let sandbox = Sandbox::with_mail_capacity(2);
    for i in 0..3 {
        sandbox.deliver(
            "a@x.test".into(),
            vec!["b@x.test".into()],
            format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes(),
        );
    }
    let kept: Vec<(u64, String)> = sandbox.mail().into_iter().map(|m| (m.id, m.subject)).collect();
    assert_eq!(kept, vec![(2, "1".to_owned()), (3, "2".to_owned())]);
}

#[test]
fn mime_decodes_what_lettre_and_others_write() {
    assert_eq!(mime::decode_words("=?utf-8?b?w6k=?= =?utf-8?q?_x?= plain =?iso-8859-1?Q?caf=E9?="), "é x plain café");
    assert_eq!(mime::decode_words("not =?bad word"), "not =?bad word");
    let raw = b"Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: multipart/alternative;\r\n boundary=a\r\n\r\n--a\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naMOpbGxv\r\n--a\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>h=C3=A9llo=\r\n!</p>\r\n--a--\r\n--m\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nnot this\r\n--m--\r\n";
    let p = mime::parse(raw);
    assert_eq!(p.text, "héllo");
    assert_eq!(p.html.as_deref(), Some("<p>héllo!</p>"));
    let single = mime::parse(b"Content-Type: text/html\r\n\r\n<i>hi</i>\r\n");
    assert_eq!((single.text.as_str(), single.html.as_deref()), ("<i>hi</i>\n", Some("<i>hi</i>\n")));
}

#[tokio::test]
async fn serve_with_mail_shares_one_sandbox() {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (web, mail) = (http.local_addr().unwrap(), smtp.local_addr().unwrap().port());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::devtools::sandbox::serve_with_mail(http, Some(smtp), None, async move {
        let _ = rx.await;
    }));
    let msg = lettre::Message::builder()
        .from("a@example.test".parse::<Mailbox>().unwrap())
        .to("b@example.test".parse::<Mailbox>().unwrap())
        .subject("hello")
        .body("plain body".to_owned())
        .unwrap();
    transport(mail).send(msg).await.unwrap();
    let url = format!("http://{web}/_sandbox/mailbox/messages?to=b@example.test");
    let got: Vec<MailMessage> = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!((got.len(), got[0].subject.as_str(), got[0].text.trim_end()), (1, "hello", "plain body"));
    let cleared = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(cleared.status(), 204);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
