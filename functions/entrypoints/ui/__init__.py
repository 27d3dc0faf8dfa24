"""The approval page: releases and their evidence for people, with approve and decline forms."""
