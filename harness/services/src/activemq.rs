//! A throwaway ActiveMQ 5.x broker (Debian's `activemq` package) with a configuration of the
//! test's own: STOMP on loopback in plain text and over TLS (a keystore from the test CA), one
//! user with a password, and NACKed messages sent straight to the dead-letter queue `DLQ.<queue>`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::certs::TestCerts;
use crate::scratch_dir;
use harness_runtime::process::{free_port, wait_for_port, KillOnDrop};

pub const USER: &str = "mq-user";
pub const PASSWORD: &str = "mq-test-Passw0rd";
const ACTIVEMQ_HOME: &str = "/usr/share/activemq";

pub struct ActiveMq {
    pub stomp_port: u16,
    pub stomp_ssl_port: u16,
    pub ca: PathBuf,
    dir: PathBuf,
    conf: PathBuf,
    process: KillOnDrop,
}

fn launch(dir: &Path, conf: &Path, stomp_port: u16, stomp_ssl_port: u16) -> KillOnDrop {
    let data = dir.join("data");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("broker.log")).expect("broker log");
    let mut child = Command::new("java")
        .args(["-Xms64m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-Xshare:auto"])
        .arg(format!("-Dactivemq.home={ACTIVEMQ_HOME}"))
        .arg(format!("-Dactivemq.base={}", dir.display()))
        .arg(format!("-Dactivemq.conf={}", dir.display()))
        .arg(format!("-Dactivemq.data={}", data.display()))
        .arg(format!("-Djava.io.tmpdir={}", dir.join("tmp").display()))
        .args(["-jar", &format!("{ACTIVEMQ_HOME}/bin/activemq.jar"), "start"])
        .arg(format!("xbean:file:{}", conf.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("starting ActiveMQ (java)");
    wait_for_port(stomp_port, Duration::from_secs(120), "ActiveMQ", &mut child);
    wait_for_port(stomp_ssl_port, Duration::from_secs(60), "ActiveMQ (TLS)", &mut child);
    KillOnDrop(child)
}

fn config(data: &Path, keystore: &Path, stomp_port: u16, stomp_ssl_port: u16) -> String {
    format!(
        r#"<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="ops-suite-test" useJmx="false"
          schedulerSupport="false" advisorySupport="false" dataDirectory="{data}">
    <destinationPolicy>
      <policyMap><policyEntries>
        <policyEntry queue=">">
          <deadLetterStrategy>
            <individualDeadLetterStrategy queuePrefix="DLQ." useQueueForQueueMessages="true" processNonPersistent="true"/>
          </deadLetterStrategy>
        </policyEntry>
      </policyEntries></policyMap>
    </destinationPolicy>
    <persistenceAdapter><kahaDB directory="{data}/kahadb"/></persistenceAdapter>
    <!-- As Amazon MQ's and Debian's own configurations do: messages kept in memory stay within a
         share of the heap (the default, 1 GB, is past this broker's 512 MB heap, and a consumer's window
         of large messages would exhaust it), so the broker pages them instead. -->
    <systemUsage><systemUsage>
      <memoryUsage><memoryUsage percentOfJvmHeap="70"/></memoryUsage>
    </systemUsage></systemUsage>
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users><authenticationUser username="{USER}" password="{PASSWORD}" groups="users,admins"/></users>
      </simpleAuthenticationPlugin>
    </plugins>
    <sslContext><sslContext keyStore="file:{keystore}" keyStorePassword="changeit" keyStoreType="pkcs12"/></sslContext>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{stomp_port}"/>
      <transportConnector name="stomp+ssl" uri="stomp+ssl://127.0.0.1:{stomp_ssl_port}"/>
    </transportConnectors>
  </broker>
</beans>
"#,
        data = data.display(),
        keystore = keystore.display(),
    )
}

impl ActiveMq {
    pub fn start() -> ActiveMq {
        let dir = scratch_dir("activemq");
        let data = dir.join("data");
        std::fs::create_dir_all(dir.join("tmp")).expect("creating the broker folder");
        let certs = TestCerts::create(&dir.join("certs"));
        let keystore = dir.join("certs").join("broker.p12");
        certs.pkcs12_keystore(&keystore, "changeit");

        let (stomp_port, stomp_ssl_port) = (free_port(), free_port());
        let conf = dir.join("activemq.xml");
        std::fs::write(&conf, config(&data, &keystore, stomp_port, stomp_ssl_port)).expect("writing activemq.xml");
        let process = launch(&dir, &conf, stomp_port, stomp_ssl_port);
        ActiveMq { stomp_port, stomp_ssl_port, ca: certs.ca, dir, conf, process }
    }

    /// Kills the broker (as a crash would) and starts it again on the same ports with the same
    /// store: persistent messages survive, connections do not.
    pub fn restart(&mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
        self.process = launch(&self.dir, &self.conf, self.stomp_port, self.stomp_ssl_port);
    }

    pub fn stomp_url(&self) -> String {
        format!("stomp://127.0.0.1:{}", self.stomp_port)
    }

    pub fn stomp_ssl_url(&self) -> String {
        format!("stomp+ssl://127.0.0.1:{}", self.stomp_ssl_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }
}

impl Drop for ActiveMq {
    fn drop(&mut self) {
        // A failing test shows what the broker said before its folder goes.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- the end of ActiveMQ's log ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
