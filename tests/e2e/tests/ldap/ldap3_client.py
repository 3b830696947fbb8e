"""Drives Lightwell's LDAP front end with the Python ldap3 client.

Run by tests/e2e/tests/ldap_python.rs with the server's addresses in the
environment; prints one JSON object with what it observed.
"""

import json
import os
import ssl
import sys

from ldap3 import ALL, BASE, MODIFY_ADD, MODIFY_REPLACE, SUBTREE, Connection, Server, Tls

ca = os.environ["LW_CA"]
host, ldaps_port = os.environ["LW_LDAPS"].rsplit(":", 1)
_, ldap_port = os.environ["LW_LDAP"].rsplit(":", 1)
base = "dc=corp,dc=example"
admin_dn = "uid=administrator,cn=Users," + base
alice_dn = "uid=alice,cn=Users," + base
tls = Tls(ca_certs_file=ca, validate=ssl.CERT_REQUIRED)
out = {}

ldaps = Server(host, port=int(ldaps_port), use_ssl=True, tls=tls, get_info=ALL)
admin = Connection(ldaps, user=admin_dn, password=os.environ["LW_ADMIN_PW"], auto_bind=True, raise_exceptions=False)
out["whoami"] = admin.extend.standard.who_am_i()
out["naming_contexts"] = list(ldaps.info.naming_contexts or [])
out["schema_has_inetorgperson"] = ldaps.schema is not None and "inetOrgPerson" in ldaps.schema.object_classes

# Writes through the same service layer as REST.
out["add_group"] = admin.add(
    "cn=pyteam,cn=Groups," + base, ["top", "groupOfNames"], {"cn": "pyteam", "member": [alice_dn]}
)
out["modify_group"] = admin.modify(
    "cn=pyteam,cn=Groups," + base,
    {"member": [(MODIFY_ADD, ["uid=administrator,cn=Users," + base])], "displayName": [(MODIFY_REPLACE, ["Py Team"])]},
)
admin.search("cn=pyteam,cn=Groups," + base, "(objectClass=*)", BASE, attributes=["member", "displayName"])
entry = admin.entries[0]
out["members"] = sorted(str(m) for m in entry.member.values)
out["display_name"] = str(entry.displayName)

# Paged search over the whole tree, three entries a page.
entries = admin.extend.standard.paged_search(base, "(objectClass=*)", SUBTREE, attributes=["1.1"], paged_size=3, generator=False)
out["paged_dns"] = [e["dn"] for e in entries if e["type"] == "searchResEntry"]
admin.search(base, "(objectClass=*)", SUBTREE, attributes=["1.1"])
out["all_dns"] = [e.entry_dn for e in admin.entries]

# Filters, including nested membership.
admin.search(base, "(&(objectClass=inetOrgPerson)(memberOf=cn=pyteam,cn=Groups,dc=corp,dc=example))", SUBTREE, attributes=["uid"])
out["pyteam_users"] = sorted(str(e.uid) for e in admin.entries)

# StartTLS on the plain port, then a password change by alice herself.
plain = Server(host, port=int(ldap_port), use_ssl=False, tls=tls)
alice = Connection(plain, user=alice_dn, password=os.environ["LW_ALICE_PW"], raise_exceptions=False)
out["start_tls"] = alice.start_tls()
out["alice_bind"] = alice.bind()
out["alice_whoami"] = alice.extend.standard.who_am_i()
out["modify_password"] = alice.extend.standard.modify_password(alice_dn, os.environ["LW_ALICE_PW"], os.environ["LW_ALICE_NEW_PW"])
alice.unbind()
again = Connection(ldaps, user=alice_dn, password=os.environ["LW_ALICE_NEW_PW"], raise_exceptions=False)
out["rebind_new_password"] = again.bind()
again.unbind()

out["delete_group"] = admin.delete("cn=pyteam,cn=Groups," + base)
admin.unbind()
json.dump(out, sys.stdout)
