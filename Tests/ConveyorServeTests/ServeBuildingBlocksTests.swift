import Foundation
import Testing

@testable import ConveyorServe

@Suite("conveyor serve: escaping, strict JSON bodies, signed sessions")
struct ServeBuildingBlocksTests {
    @Test func textFromRedisIsEscapedForElementsAndAttributes() {
        #expect(
            HTML.escape(#"<script>alert("x")</script> & 'y'"#)
                == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        )
        #expect(HTML.escape("plain ünïcode ✓") == "plain ünïcode ✓")
        #expect(HTML.jobPath("mail/a b<") == "/jobs/mail/a%20b%3C")
        #expect(HTML.action("Retry", "POST", "/x\"><script>", readOnly: false).contains("/x&quot;&gt;&lt;script&gt;"))
        #expect(HTML.action("Retry", "POST", "/x", readOnly: true).isEmpty)
    }

    @Test func prometheusLabelValuesAreEscapedAndValuesWrittenExactly() {
        var text = PrometheusText()
        text.family("conveyor_queue_jobs", .gauge, "Jobs.")
        text.sample("conveyor_queue_jobs", [("queue", "a\"b\\c\nd")], 3)
        text.sample("conveyor_queue_jobs", [], 0.25)
        #expect(
            text.text == "# HELP conveyor_queue_jobs Jobs.\n# TYPE conveyor_queue_jobs gauge\n"
                + "conveyor_queue_jobs{queue=\"a\\\"b\\\\c\\nd\"} 3\nconveyor_queue_jobs 0.25\n"
        )
    }

    @Test func jsonBodiesAreReadStrictly() throws {
        let body = try JSONBody(bytes: Array(#"{"type":"t","n":3,"flag":true,"f":1.5,"s":"1"}"#.utf8))
        #expect(try body.requiredString("type") == "t")
        #expect(try body.integer("n", in: 0...10) == 3)
        #expect(try body.boolean("flag") == true)
        #expect(throws: APIError.self) { try body.integer("flag", in: 0...10) }
        #expect(throws: APIError.self) { try body.integer("f", in: 0...10) }
        #expect(throws: APIError.self) { try body.integer("s", in: 0...10) }
        #expect(throws: APIError.self) { try body.integer("n", in: 4...10) }
        #expect(throws: APIError.self) { try body.boolean("n") }
        #expect(throws: APIError.self) { try body.allow(["type"]) }
        #expect(throws: APIError.self) { try JSONBody(bytes: Array("[1]".utf8)) }
        #expect(throws: APIError.self) { try JSONBody(bytes: []) }
        do {
            _ = try JSONBody(bytes: Array("{oops".utf8))
            Issue.record("bad JSON was accepted")
        } catch {
            #expect(error.code == "invalidArgument" && error.message.contains("not valid JSON"))
        }
    }

    @Test func sessionsAreSignedExpireAndDependOnTheCredential() {
        let session = SignedSession(secret: "token-1")
        let cookie = session.issue()
        #expect(session.accepts(cookie))
        #expect(!SignedSession(secret: "token-2").accepts(cookie), "another credential does not accept it")
        #expect(!session.accepts(cookie, now: Date().addingTimeInterval(13 * 3600)), "expired")
        let expiry = cookie.prefix { $0 != "." }
        let forged = String(Int(expiry)! + 86_400) + cookie.drop { $0 != "." }
        #expect(!session.accepts(forged), "a changed expiry breaks the signature")
        #expect(!session.accepts("garbage") && !session.accepts(""))
        #expect(SignedSession.randomToken().count == 32 && SignedSession.randomToken() != SignedSession.randomToken())
    }

    @Test func authorizationHeadersCarryTheConfiguredCredential() {
        let token = AccessMiddleware(configuration: ServeConfiguration(access: .token("s3cret")))
        #expect(token.accepts("Bearer s3cret") && token.accepts("bearer s3cret"))
        #expect(!token.accepts("Bearer s3cre") && !token.accepts("Basic czNjcmV0") && !token.accepts("s3cret"))
        let user = AccessMiddleware(configuration: ServeConfiguration(access: .user(name: "ops", password: "pw")))
        #expect(user.accepts("Basic " + Data("ops:pw".utf8).base64EncodedString()))
        #expect(!user.accepts("Basic " + Data("ops:nope".utf8).base64EncodedString()) && !user.accepts("Bearer pw"))
        #expect(user.acceptsSignIn(user: "ops", secret: "pw") && !user.acceptsSignIn(user: "op", secret: "spw"))
        #expect(ServeConfiguration(host: "127.0.0.2", access: .open).bindsLoopback)
        #expect(!ServeConfiguration(host: "0.0.0.0", access: .open).bindsLoopback)
    }
}
