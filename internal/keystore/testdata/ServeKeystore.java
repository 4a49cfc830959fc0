// ServeKeystore: for each (type, file, store password, key password)
// given, load the keystore into a SunX509 KeyManager, print "PORT <n>" of
// an SSLServerSocket on loopback, accept one TLS connection, and write
// "served <type>" on it. The tests of internal/keystore and of the
// provider run it with `java ServeKeystore.java ...` (single-file launch)
// and connect with a client that verifies the chain.
import java.io.*;
import java.net.*;
import java.security.KeyStore;
import javax.net.ssl.*;

public class ServeKeystore {
    public static void main(String[] a) throws Exception {
        for (int i = 0; i + 3 < a.length; i += 4) {
            KeyStore ks = KeyStore.getInstance(a[i]);
            try (InputStream in = new FileInputStream(a[i + 1])) {
                ks.load(in, a[i + 2].toCharArray());
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
            kmf.init(ks, a[i + 3].toCharArray());
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), null, null);
            try (SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
                    .createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                System.out.println("PORT " + ss.getLocalPort());
                System.out.flush();
                try (SSLSocket s = (SSLSocket) ss.accept()) {
                    s.startHandshake();
                    s.getOutputStream().write(("served " + a[i] + "\n").getBytes("UTF-8"));
                    s.getOutputStream().flush();
                }
            }
        }
    }
}
