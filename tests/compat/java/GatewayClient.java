import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Calls POST /faceidcard/check signed the way Alibaba's Java demo signs
 * (aliyun/api-gateway-demo-sign-java: HttpUtil, SignUtil, MessageDigestUtil). An
 * independent client written from reading it, JDK only (java.net.http, javax.crypto,
 * MessageDigest, Base64). What it reproduces:
 *
 * <ul>
 *   <li>the headers: {@code Accept: application/json}, {@code X-Ca-Timestamp} (epoch
 *       milliseconds) and {@code X-Ca-Key}, and <b>no nonce</b> (the demo's nonce line is
 *       commented out), no {@code X-Ca-Signature-Method} (HmacSHA256, the default);
 *   <li>a string body ({@code Content-Type: application/json; charset=UTF-8}) with
 *       {@code Content-MD5}, base64 of the MD5 of its UTF-8 bytes; or a form
 *       ({@code application/x-www-form-urlencoded; charset=UTF-8}, no Content-MD5, the
 *       fields in the string-to-sign);
 *   <li>the signed headers: those whose name starts with {@code X-Ca-}, in a
 *       {@code TreeMap}'s order, spelled as sent: {@code X-Ca-Key,X-Ca-Timestamp};
 *   <li>the resource: the path, then {@code ?} and the query and form parameters in a
 *       {@code TreeMap}'s order, {@code key=value} or the key alone for a blank value.
 * </ul>
 *
 * <p>Usage: {@code java GatewayClient URL APP_KEY APP_SECRET json|form}. The fields come
 * from the environment: RZ_NAME, RZ_ID_CARD, RZ_IMAGE (base64). RZ_REPEAT=N sends the same
 * signed request N times (a replay). Prints one JSON line: {@code {"client",
 * "string_to_sign", "responses": [{"status", "headers", "body"}]}}.
 */
public final class GatewayClient {
    private static final String PATH = "/faceidcard/check";
    private static final String LF = "\n";
    private static final String CONTENT_TYPE_JSON = "application/json; charset=UTF-8";
    private static final String CONTENT_TYPE_FORM = "application/x-www-form-urlencoded; charset=UTF-8";
    private static final String SYSTEM_PREFIX = "X-Ca-";

    private GatewayClient() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 4 || !(args[3].equals("json") || args[3].equals("form"))) {
            System.err.println("usage: java GatewayClient URL APP_KEY APP_SECRET json|form");
            System.exit(2);
        }
        String url = args[0].replaceAll("/$", "");
        String appKey = args[1];
        String appSecret = args[2];
        boolean form = args[3].equals("form");

        Map<String, String> fields = new LinkedHashMap<>();
        fields.put("name", env("RZ_NAME"));
        fields.put("idCard", env("RZ_ID_CARD"));
        fields.put("image", env("RZ_IMAGE"));

        Map<String, String> headers = new TreeMap<>();
        headers.put("Accept", "application/json");
        byte[] body;
        Map<String, String> signedParams = new TreeMap<>();
        if (form) {
            headers.put("Content-Type", CONTENT_TYPE_FORM);
            body = formEncode(fields).getBytes(StandardCharsets.UTF_8);
            signedParams.putAll(fields);
        } else {
            headers.put("Content-Type", CONTENT_TYPE_JSON);
            body = json(fields).getBytes(StandardCharsets.UTF_8);
            headers.put("Content-MD5", base64Md5(body));
        }
        headers.put("X-Ca-Timestamp", String.valueOf(System.currentTimeMillis()));
        headers.put("X-Ca-Key", appKey);
        String stringToSign = stringToSign("POST", headers, signedParams);
        headers.put("X-Ca-Signature", hmacSha256(appSecret, stringToSign));

        HttpClient client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
        List<String> responses = new ArrayList<>();
        int repeat = Integer.parseInt(System.getenv().getOrDefault("RZ_REPEAT", "1"));
        for (int i = 0; i < repeat; i++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url + PATH))
                    .timeout(Duration.ofSeconds(30))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body));
            for (Map.Entry<String, String> h : headers.entrySet()) {
                // The demo hands header values to the wire as UTF-8 bytes.
                request.header(h.getKey(), new String(h.getValue().getBytes(StandardCharsets.UTF_8),
                        StandardCharsets.ISO_8859_1));
            }
            HttpResponse<byte[]> response =
                    client.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
            responses.add(responseJson(response));
        }
        System.out.println("{\"client\":\"java demo-sign style (" + args[3] + ", HmacSHA256, no nonce)\","
                + "\"string_to_sign\":" + quote(stringToSign)
                + ",\"responses\":[" + String.join(",", responses) + "]}");
    }

    /** METHOD, the four standard headers, the X-Ca-* headers, then the resource. */
    static String stringToSign(String method, Map<String, String> headers, Map<String, String> params) {
        StringBuilder sb = new StringBuilder(method.toUpperCase()).append(LF);
        for (String name : new String[] {"Accept", "Content-MD5", "Content-Type", "Date"}) {
            String value = headers.get(name);
            if (value != null) {
                sb.append(value);
            }
            sb.append(LF);
        }
        StringBuilder signedNames = new StringBuilder();
        for (Map.Entry<String, String> h : new TreeMap<>(headers).entrySet()) {
            if (!h.getKey().startsWith(SYSTEM_PREFIX)) {
                continue;
            }
            sb.append(h.getKey()).append(':');
            if (!isBlank(h.getValue())) {
                sb.append(h.getValue());
            }
            sb.append(LF);
            if (signedNames.length() > 0) {
                signedNames.append(',');
            }
            signedNames.append(h.getKey());
        }
        headers.put("X-Ca-Signature-Headers", signedNames.toString());
        sb.append(PATH);
        StringBuilder query = new StringBuilder();
        for (Map.Entry<String, String> p : new TreeMap<>(params).entrySet()) {
            if (isBlank(p.getKey())) {
                continue;
            }
            if (query.length() > 0) {
                query.append('&');
            }
            query.append(p.getKey());
            if (!isBlank(p.getValue())) {
                query.append('=').append(p.getValue());
            }
        }
        if (query.length() > 0) {
            sb.append('?').append(query);
        }
        return sb.toString();
    }

    static String hmacSha256(String secret, String stringToSign) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        byte[] key = secret.getBytes(StandardCharsets.UTF_8);
        mac.init(new SecretKeySpec(key, 0, key.length, "HmacSHA256"));
        return Base64.getEncoder().encodeToString(mac.doFinal(stringToSign.getBytes(StandardCharsets.UTF_8)));
    }

    static String base64Md5(byte[] bytes) throws Exception {
        MessageDigest md = MessageDigest.getInstance("MD5");
        return Base64.getEncoder().encodeToString(md.digest(bytes));
    }

    static String formEncode(Map<String, String> fields) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, String> f : fields.entrySet()) {
            if (sb.length() > 0) {
                sb.append('&');
            }
            sb.append(URLEncoder.encode(f.getKey(), StandardCharsets.UTF_8)).append('=')
                    .append(URLEncoder.encode(f.getValue(), StandardCharsets.UTF_8));
        }
        return sb.toString();
    }

    static String json(Map<String, String> fields) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<String, String> f : fields.entrySet()) {
            if (sb.length() > 1) {
                sb.append(',');
            }
            sb.append(quote(f.getKey(), false)).append(':').append(quote(f.getValue(), false));
        }
        return sb.append('}').toString();
    }

    static String responseJson(HttpResponse<byte[]> response) {
        StringBuilder headers = new StringBuilder("{");
        for (Map.Entry<String, List<String>> h : response.headers().map().entrySet()) {
            if (h.getKey().startsWith(":")) {
                continue;
            }
            if (headers.length() > 1) {
                headers.append(',');
            }
            // As the demo reads them: the wire's bytes (ISO-8859-1 to Java) decoded as UTF-8.
            String value = new String(String.join(",", h.getValue()).getBytes(StandardCharsets.ISO_8859_1),
                    StandardCharsets.UTF_8);
            headers.append(quote(h.getKey().toLowerCase())).append(':').append(quote(value));
        }
        headers.append('}');
        return "{\"status\":" + response.statusCode() + ",\"headers\":" + headers
                + ",\"body\":" + quote(new String(response.body(), StandardCharsets.UTF_8)) + "}";
    }

    static String quote(String s) {
        return quote(s, true);
    }

    /** A JSON string; {@code ascii}: non-ASCII escaped (for stdout), else kept (the request body). */
    static String quote(String s, boolean ascii) {
        StringBuilder sb = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20 || (ascii && c > 0x7e)) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        return sb.append('"').toString();
    }

    static boolean isBlank(String s) {
        return s == null || s.trim().isEmpty();
    }

    static String env(String name) {
        String value = System.getenv(name);
        return value == null ? "" : value;
    }
}
