"""Who is calling, proven: Easy Auth principal headers (Azure), the local CLI's signature, signed links.

Never the request body. Each module checks one kind of proof and gives a functions.domain.approval.Principal.
"""
