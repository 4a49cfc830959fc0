#!/bin/sh
# Regenerates the keytool-made keystores in this folder (JDK 17 keytool).
# Store password "changeit"; jks-rsa-keypass.jks has key password "keypass1".
set -e
cd "$(dirname "$0")"
rm -f ./*.jks ./*.p12
gen() { # file storetype alias keyalg [extra...]
	f=$1 st=$2 a=$3 alg=$4; shift 4
	keytool -genkeypair -noprompt -keystore "$f" -storetype "$st" -storepass changeit \
		-alias "$a" -keyalg "$alg" -validity 36500 \
		-dname "CN=$a.example.com, OU=Mail, O=Example, L=Paris, ST=IDF, C=FR" "$@"
}
gen jks-rsa-keypass.jks JKS james RSA -keysize 2048 -keypass keypass1
gen jks-ec.jks JKS james EC -groupname secp256r1
gen p12-ec.p12 PKCS12 james EC -groupname secp384r1
gen p12-legacy.p12 PKCS12 james EC -J-Dkeystore.pkcs12.legacy
# Two private keys plus a trusted certificate.
gen p12-two-keys.p12 PKCS12 james RSA -keysize 2048
gen p12-two-keys.p12 PKCS12 postfix EC
keytool -exportcert -keystore p12-two-keys.p12 -storepass changeit -alias postfix -rfc -file postfix.pem
keytool -importcert -noprompt -keystore p12-two-keys.p12 -storepass changeit -alias root -file postfix.pem
rm postfix.pem
# A DSA key: readable, but Go has no DSA signer.
gen jks-dsa.jks JKS james DSA -keysize 2048
