"""Common given names, used by the person-name gate and to keep NER PERSON spans whose words
are also common English words ("Rose", "Tom", "Will"). Lower case; extend it per dataset
with `filter.extra_first_names`."""

FIRST_NAMES: frozenset[str] = frozenset(
    (
        # English
        "james john robert michael william david richard joseph thomas charles christopher daniel "
        "matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy "
        "ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin "
        "scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry "
        "tyler aaron jose adam nathan henry douglas zachary peter kyle ethan walter noah jeremy "
        "christian keith roger terry gerald harold sean austin carl arthur lawrence dylan jesse "
        "jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy roy "
        "vincent ralph eugene russell bobby mason philip louis harry liam oliver lucas leo max sam "
        "tom tim ben jim bob bill mike dave steve nick tony dan chris matt alex will rob ed ted ken "
        "mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty "
        "margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa deborah "
        "stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma "
        "nicole helen samantha katherine christine debra rachel carolyn janet catherine maria heather "
        "diane ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith "
        "megan andrea cheryl hannah jacqueline martha gloria teresa ann sara madison frances kathryn "
        "janice jean abigail alice judy sophia grace denise amber doris marilyn danielle beverly "
        "isabella theresa diana natalie brittany charlotte marie kayla alexis lori rose lily ella "
        "mia ava chloe zoe kate jane lucy amelia ellie ruby daisy holly ivy jade hope faith joy "
        # Spanish, Portuguese, Italian, French, German, Dutch, Scandinavian
        "carlos luis miguel pedro jorge manuel javier antonio francisco alejandro diego pablo sergio "
        "fernando ricardo rafael andres eduardo roberto alberto raul enrique ramon mario marco luca "
        "giovanni giuseppe francesco matteo lorenzo paolo joao tiago rui pierre jean jacques louis "
        "francois nicolas michel philippe antoine hans klaus jurgen stefan wolfgang dieter uwe lars "
        "sven anders erik johan jan pieter willem henrik olaf "
        "carmen lucia sofia valentina camila isabel elena laura paula marta ana rosa dolores pilar "
        "beatriz ines julia giulia francesca chiara sophie camille claire isabelle nathalie anne "
        "ursula ingrid astrid greta heidi monika sabine petra anja katrin birgit sanne femke "
        # Slavic, Greek, Turkish, Arabic, Persian, Hebrew, African
        "ivan dmitri sergei vladimir alexei andrei mikhail nikolai pavel yuri boris igor piotr pawel "
        "tomasz marek jakub nikos giorgos kostas mehmet mustafa ahmet emre ali omar ahmed mohamed "
        "mohammed muhammad hassan hussein ibrahim yusuf khalid karim amir reza dariush david moshe "
        "yosef avi noam kwame kofi chidi emeka oluwaseun tunde sipho thabo jabari "
        "olga natasha svetlana irina tatiana elena anastasia ekaterina marina agnieszka katarzyna "
        "eleni maria ayse fatma zeynep elif fatima aisha leila yasmin mariam nour zahra shirin "
        "miriam rivka tamar noa amara chiamaka ngozi ifeoma zanele "
        # South and East Asian
        "raj rahul amit arjun vikram ravi sanjay anil sunil vijay rohan aditya karan arun deepak "
        "priya anjali pooja neha divya kavya lakshmi sunita anita meera aisha "
        "wei ming jun hao lei jian yong tao feng bo chen li wang zhang liu yang hiroshi takashi "
        "kenji yuki haruto ren sota daiki akira satoshi minh duc tuan huy hung jin min seo hyun "
        "ji woo young soo yu mei xin ying hui yan na fang lin hana sakura yui aoi mai linh thu "
    ).split()
)
