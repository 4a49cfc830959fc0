package keystore

func decodePKCS12(data, storePassword []byte) (*Keystore, error) {
	return nil, newErr(ErrUnsupported, "", nil, "PKCS#12 not yet implemented")
}

func (k *Keystore) encodePKCS12(storePassword []byte) ([]byte, error) {
	return nil, newErr(ErrUnsupported, "", nil, "PKCS#12 not yet implemented")
}
